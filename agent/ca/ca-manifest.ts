/**
 * state.json, the CA state's manifest: which authorities and JWT keys exist, their states, and the bundle sequence.
 * Keys and certificates live in files named after their IDs (fileNames), so the manifest holds no paths to trust.
 * Parsing checks every field and the invariants (one active authority and JWT key, at most one prepared of each);
 * any defect is ERR_CA_STATE_INVALID naming the file and the field.
 */
import { CaError } from './errors'
import { KEY_TYPES } from './keys'
import type { KeyType } from './keys'
import type { KeyState } from './rotation'

export const MANIFEST_FILE = 'state.json'
const MANIFEST_VERSION = 1

export interface ManifestAuthority {
  readonly id: string
  readonly state: KeyState
}

export interface ManifestJwtKey {
  readonly kid: string
  readonly state: KeyState
  readonly keyType: KeyType
  readonly notBefore: string
  readonly notAfter: string
}

export interface Manifest {
  readonly version: typeof MANIFEST_VERSION
  readonly trustDomain: string
  /** Whether the authorities are intermediates of an upstream CA (true) or self-signed roots (false). */
  readonly upstream: boolean
  /** SHA-256 fingerprints of the upstream roots the bundle held when last written, to notice when they change. */
  readonly upstreamRoots: readonly string[]
  /**
   * Under a remote upstream (a fleet's SPIRE server): the file holding the upstream's bundle (its X.509 roots and JWT
   * authorities, SPIFFE bundle format) as last received, so the CA starts and serves it with the upstream unreachable.
   */
  readonly upstreamBundle?: string
  readonly sequence: number
  readonly x509: readonly ManifestAuthority[]
  readonly jwt: readonly ManifestJwtKey[]
}

/** The files of one authority or JWT key, relative to the CA directory. */
export const fileNames = {
  x509Key: (id: string) => `x509-${id}.key.pem`,
  /** The authority's certificate, then the upstream chain above it (if any). */
  x509Cert: (id: string) => `x509-${id}.cert.pem`,
  jwtKey: (kid: string) => `jwt-${kid}.key.pem`,
  /** Named by its content, so a changed bundle is a new file and the manifest switches to it atomically. */
  upstreamBundle: (contentHash: string) => `upstream-bundle-${contentHash}.json`
}

const STATES: readonly KeyState[] = ['active', 'prepared', 'retired']
/**
 * Serial numbers in hex: 32 digits as we make them (x509-certificate.ts), up to 40 (RFC 5280's 20 octets) as an
 * upstream assigns them; and 24 random bytes in base64url (jwt-issuer.ts).
 */
const AUTHORITY_ID = /^[0-9a-f]{1,40}$/
const UPSTREAM_BUNDLE_FILE = /^upstream-bundle-[0-9a-f]{16}\.json$/
const KID = /^[A-Za-z0-9_-]{32}$/

type Json = Record<string, unknown>

export function parseManifest (text: string, path: string): Manifest {
  const fail = (problem: string): never => {
    throw new CaError('ERR_CA_STATE_INVALID', `CA state ${path}: ${problem}; the file was left as it is (restore it from a backup, or move the CA directory away to start a new CA)`)
  }
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (err) {
    fail(`not valid JSON (${(err as Error).message})`)
  }
  const root = object(doc, 'the document', fail)
  if (root.version !== MANIFEST_VERSION) fail(`"version" must be ${MANIFEST_VERSION}, found ${JSON.stringify(root.version)}`)
  if (typeof root.trustDomain !== 'string') fail('"trustDomain" must be a string')
  if (typeof root.upstream !== 'boolean') fail('"upstream" must be true or false')
  if (!Number.isSafeInteger(root.sequence) || (root.sequence as number) < 0) fail('"sequence" must be a whole number, 0 or more')
  const upstreamRoots = list(root.upstreamRoots, 'upstreamRoots', fail)
  if (upstreamRoots.some(value => typeof value !== 'string')) fail('"upstreamRoots" must list fingerprints as strings')
  const x509 = list(root.x509, 'x509', fail).map((entry, index) => {
    const where = `x509[${index}]`
    const item = object(entry, where, fail)
    return { id: matching(item.id, AUTHORITY_ID, `${where}.id`, fail), state: state(item.state, where, fail) }
  })
  const jwt = list(root.jwt, 'jwt', fail).map((entry, index) => {
    const where = `jwt[${index}]`
    const item = object(entry, where, fail)
    if (!KEY_TYPES.includes(item.keyType as KeyType)) fail(`${where}.keyType must be one of ${KEY_TYPES.join(', ')}`)
    const notBefore = date(item.notBefore, `${where}.notBefore`, fail)
    const notAfter = date(item.notAfter, `${where}.notAfter`, fail)
    if (Date.parse(notAfter) <= Date.parse(notBefore)) fail(`${where}.notAfter must be after its notBefore`)
    return { kid: matching(item.kid, KID, `${where}.kid`, fail), state: state(item.state, where, fail), keyType: item.keyType as KeyType, notBefore, notAfter }
  })
  const upstreamBundle = root.upstreamBundle === undefined ? undefined : matching(root.upstreamBundle, UPSTREAM_BUNDLE_FILE, 'upstreamBundle', fail)
  if (upstreamBundle !== undefined && root.upstream !== true) fail('"upstreamBundle" is set, but "upstream" is not true')
  checkStates(x509.map(entry => [entry.id, entry.state]), 'x509', fail)
  checkStates(jwt.map(entry => [entry.kid, entry.state]), 'jwt', fail)
  return {
    version: MANIFEST_VERSION,
    trustDomain: root.trustDomain as string,
    upstream: root.upstream as boolean,
    upstreamRoots: upstreamRoots as string[],
    ...(upstreamBundle === undefined ? {} : { upstreamBundle }),
    sequence: root.sequence as number,
    x509,
    jwt
  }
}

function object (value: unknown, where: string, fail: (problem: string) => never): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(`${where} must be a JSON object`)
  return value as Json
}

function list (value: unknown, field: string, fail: (problem: string) => never): unknown[] {
  if (!Array.isArray(value)) fail(`"${field}" must be a list`)
  return value as unknown[]
}

function matching (value: unknown, pattern: RegExp, field: string, fail: (problem: string) => never): string {
  if (typeof value !== 'string' || !pattern.test(value)) fail(`${field} must match ${String(pattern)}, found ${JSON.stringify(value)}`)
  return value
}

function state (value: unknown, where: string, fail: (problem: string) => never): KeyState {
  if (!STATES.includes(value as KeyState)) fail(`${where}.state must be one of ${STATES.join(', ')}, found ${JSON.stringify(value)}`)
  return value as KeyState
}

function date (value: unknown, field: string, fail: (problem: string) => never): string {
  if (typeof value !== 'string' || Number.isNaN(Date.parse(value))) fail(`${field} must be an ISO 8601 date`)
  return value
}

/** One active key, at most one prepared, no ID twice: what rotation.ts relies on. */
function checkStates (entries: Array<[string, KeyState]>, field: string, fail: (problem: string) => never): void {
  const count = (wanted: KeyState): number => entries.filter(([, entryState]) => entryState === wanted).length
  if (count('active') !== 1) fail(`"${field}" must hold exactly one active entry, found ${count('active')}`)
  if (count('prepared') > 1) fail(`"${field}" must hold at most one prepared entry, found ${count('prepared')}`)
  const ids = entries.map(([id]) => id)
  const repeated = ids.find((id, index) => ids.indexOf(id) !== index)
  if (repeated !== undefined) fail(`"${field}" lists ${repeated} twice`)
}
