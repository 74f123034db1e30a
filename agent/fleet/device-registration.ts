/**
 * Registering a device with the fleet (`chaperone fleet register`): the registration entries that make a device's
 * downstream entry authorized to it once it attests with x509pop, in the two shapes SPIRE's authorized-entries rule
 * (store/authorized-entries.ts) serves and SPIRE's own tools would write:
 * - **by its birth certificate**: the downstream entry parented on the x509pop agent ID the device will attest as
 *   (`spiffe://<td>/spire/agent/x509pop/<SHA-1 of the certificate>`): that one certificate, nothing else;
 * - **by x509pop selectors** (subject CN, serial number, a CA's fingerprint, a SAN): a node alias parented on
 *   `spiffe://<td>/spire/server` with those selectors (`spire-server entry create -node`), and the downstream entry
 *   parented on it: every device whose attested selectors include them all. One alias per device, so that a device
 *   finds exactly one downstream entry of its own (upstream/downstream-entry.ts).
 * Selector values are written as SPIRE's x509pop writes them (lowercase hex, serials without leading zeros), so
 * that a fingerprint pasted with colons or a serial in capitals still matches.
 */
import { parseSpiffeId } from '../../spiffe/id'
import type { TrustDomain } from '../../spiffe/id'
import { SpiffeIdError } from '../../spiffe/errors'
import { decodePem } from '../../spiffe/pem'
import { EntryError } from '../store'
import type { EntryInput, RegistrationEntry, RegistrationStore } from '../store'
import { FleetError } from './errors'
import { readPopCertificate, spireSerialHex } from './x509pop-certificate'
import type { PopCertificate } from './x509pop-certificate'
import { X509POP_TYPE, x509popAgentIdOf } from './x509pop-selectors'

export interface DeviceRegistration {
  /** The device's SPIFFE ID: its downstream entry's, the ID its device CA is asked for with. */
  readonly spiffeId: string
  /** x509pop selectors (`x509pop:subject:cn:SN-1` …); not with a birth certificate. */
  readonly selectors: readonly string[]
  /** PEM, the birth certificate first (intermediates after it are ignored); '' for none. */
  readonly birthCertPem: string
  /** The downstream X509-SVID's lifetime, seconds; 0: the agent's default. */
  readonly x509SvidTtl: number
  /** With selectors: the node alias's SPIFFE ID; '': `<spiffeId>/node-alias`. */
  readonly aliasId: string
}

export interface RegisteredDevice {
  readonly downstream: RegistrationEntry
  /** With selectors: the node alias the downstream entry is parented on (created, or an identical one reused). */
  readonly alias: RegistrationEntry | null
  /** With a birth certificate: the agent ID the device attests as. */
  readonly agentId: string | null
}

const SPIRE_SELECTORS = { selectorSyntax: 'spire' } as const
const SELECTOR_FORMS = 'x509pop:subject:cn:CN, x509pop:serialnumber:HEX, x509pop:ca:fingerprint:SHA1 or x509pop:san:KEY:VALUE'

/** Creates the device's entries; throws ERR_FLEET_REGISTRATION_INVALID, ERR_FLEET_BIRTH_CERT_INVALID, ERR_SPIFFE_ID_INVALID, or the store's EntryError. */
export function registerDevice (store: RegistrationStore, trustDomain: TrustDomain, registration: DeviceRegistration): RegisteredDevice {
  const spiffeId = fleetId(registration.spiffeId, trustDomain, 'the device\'s ID')
  const byCertificate = registration.birthCertPem.trim() !== ''
  if (byCertificate && registration.selectors.length > 0) throw invalid('register a device by its birth certificate or by selectors, not both')
  if (!byCertificate && registration.selectors.length === 0) {
    throw invalid('a device is registered by its birth certificate or by at least one x509pop selector (--birth-cert, --cn, --serial, --ca-fingerprint, --selector)')
  }
  const ttl = registration.x509SvidTtl > 0 ? { x509SvidTtl: registration.x509SvidTtl } : {}
  if (byCertificate) {
    const leaf = birthCertificate(registration.birthCertPem)
    const agentId = x509popAgentIdOf(trustDomain, leaf).toString()
    const selectors = [...(leaf.commonName === '' ? [] : [`${X509POP_TYPE}:subject:cn:${leaf.commonName}`]), `${X509POP_TYPE}:serialnumber:${leaf.serialHex}`]
    return { downstream: store.createEntry({ spiffeId, parentId: agentId, selectors, downstream: true, ...ttl }, SPIRE_SELECTORS), alias: null, agentId }
  }
  const selectors = registration.selectors.map(canonicalX509popSelector)
  const aliasId = registration.aliasId === '' ? `${spiffeId}/node-alias` : fleetId(registration.aliasId, trustDomain, 'the node alias\'s ID')
  if (aliasId === spiffeId) throw invalid(`the node alias needs an ID of its own, not the device's ${spiffeId}`)
  const aliasInput: EntryInput = { spiffeId: aliasId, parentId: store.serverId, selectors }
  const downstreamInput: EntryInput = { spiffeId, parentId: aliasId, selectors, downstream: true, ...ttl }
  // Both are checked (fields, duplicates) before anything is written, so a refusal leaves no alias behind.
  const existingAlias = store.findSimilarEntry(aliasInput, SPIRE_SELECTORS)
  const registered = store.findSimilarEntry(downstreamInput, SPIRE_SELECTORS)
  if (registered !== undefined) {
    throw new EntryError('ERR_ENTRY_DUPLICATE', `device ${spiffeId} is registered with these selectors already (entry ${registered.id}); ` +
      `to register it anew, delete that entry first (chaperone entry delete ${registered.id})`)
  }
  const alias = existingAlias ?? store.createEntry(aliasInput, SPIRE_SELECTORS)
  try {
    return { downstream: store.createEntry(downstreamInput, SPIRE_SELECTORS), alias, agentId: null }
  } catch (err) {
    if (existingAlias === undefined) store.deleteEntry(alias.id)
    throw err
  }
}

/**
 * An x509pop selector as SPIRE's x509pop writes it (x509pop-selectors.ts): CNs and SANs as given, a CA's SHA-1
 * fingerprint in lowercase hex without colons, a serial number in SPIRE's SerialNumberHex.
 */
export function canonicalX509popSelector (text: string): string {
  const bad = (why: string): FleetError => invalid(`selector ${JSON.stringify(text)} ${why}; the fleet's devices have ${SELECTOR_FORMS}`)
  const prefix = `${X509POP_TYPE}:`
  if (!text.startsWith(prefix)) throw bad('is not an x509pop selector (the fleet attests devices with x509pop only)')
  const value = text.slice(prefix.length)
  const field = /^(subject:cn|serialnumber|ca:fingerprint|san:[^:]+):(.+)$/.exec(value)
  if (field === null) throw bad('is not one of x509pop\'s')
  const [, kind, given] = field
  if (kind === 'serialnumber') {
    const hex = given.replace(/:/g, '').replace(/^0x/i, '')
    if (!/^[0-9a-fA-F]+$/.test(hex)) throw bad('has a serial number that is not hex')
    return `${prefix}serialnumber:${spireSerialHex(hex.toLowerCase())}`
  }
  if (kind === 'ca:fingerprint') {
    const hex = given.replace(/:/g, '').toLowerCase()
    if (!/^[0-9a-f]{40}$/.test(hex)) throw bad('has a fingerprint that is not a SHA-1 (40 hex digits, colons allowed)')
    return `${prefix}ca:fingerprint:${hex}`
  }
  return `${prefix}${kind}:${given}`
}

/** An ID in our trust domain outside SPIRE's reserved /spire namespace, as SPIRE's server requires of entries' IDs. */
function fleetId (text: string, trustDomain: TrustDomain, what: string): string {
  let id
  try {
    id = parseSpiffeId(text)
  } catch (err) {
    throw new SpiffeIdError(`${what}: ${(err as Error).message}`)
  }
  if (!id.memberOf(trustDomain)) {
    throw invalid(`${what} ${id.toString()} is not in this agent's trust domain ${trustDomain.name}: devices nest under the fleet's own trust domain`)
  }
  if (!id.hasPath || id.path === '/spire' || id.path.startsWith('/spire/')) {
    throw invalid(`${what} ${id.toString()} needs a path outside /spire (SPIRE's reserved namespace), e.g. spiffe://${trustDomain.name}/device/SN-1`)
  }
  return id.toString()
}

/** The leaf of a PEM birth certificate chain, read as the fleet's x509pop verifier reads it. */
function birthCertificate (pem: string): PopCertificate {
  const fail = (why: string, cause?: unknown): FleetError => new FleetError('ERR_FLEET_BIRTH_CERT_INVALID', `birth certificate: ${why}`, { cause })
  let leaf: Buffer | undefined
  try {
    leaf = decodePem(pem).find(block => block.label === 'CERTIFICATE')?.der
  } catch (err) {
    throw fail(`unreadable PEM (${(err as Error).message})`, err)
  }
  if (leaf === undefined) throw fail('no PEM CERTIFICATE block')
  try {
    return readPopCertificate(leaf)
  } catch (err) {
    throw fail(`does not parse (${(err as Error).message})`, err)
  }
}

function invalid (message: string): FleetError {
  return new FleetError('ERR_FLEET_REGISTRATION_INVALID', message)
}
