/**
 * `chaperone fleet register|list|ban|evict`: the devices of an agent in the upstream role (`fleet:`) through its admin
 * API: register a device by its birth certificate or by x509pop selectors (its downstream entry, authorized to it
 * once it attests), list the devices attested and those registered but not yet, ban and evict one as
 * `spire-server agent ban|evict` do.
 */
import { readFileSync } from 'node:fs'
import type { Command } from 'commander'
import type { DeviceMessage, ListDevicesMessage, RegisteredDeviceMessage } from '../agent/admin/client'
import type { EntryMessage } from '../agent/admin/entry-message'
import { FleetError } from '../agent/fleet/errors'
import { collect, parseTtl, print, withAdmin, withAdminOptions } from './admin-options'
import type { AdminOptions } from './admin-options'

interface RegisterOptions extends AdminOptions {
  id: string
  cn?: string
  serial?: string
  caFingerprint?: string
  selector?: string[]
  birthCert?: string
  aliasId?: string
  x509Ttl?: number
}

const isoTime = (unixSeconds: number): string => new Date(unixSeconds * 1000).toISOString()
const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`

/** The selectors the options name, as x509pop writes them (the agent checks and canonicalises them). */
function selectorsOf (options: RegisterOptions): string[] {
  return [
    ...(options.cn === undefined ? [] : [`x509pop:subject:cn:${options.cn}`]),
    ...(options.serial === undefined ? [] : [`x509pop:serialnumber:${options.serial}`]),
    ...(options.caFingerprint === undefined ? [] : [`x509pop:ca:fingerprint:${options.caFingerprint}`]),
    ...(options.selector ?? [])
  ]
}

function readBirthCert (path: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    throw new FleetError('ERR_FLEET_BIRTH_CERT_INVALID', `cannot read the birth certificate ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err })
  }
}

function describeRegistered ({ downstream, alias, agent_id: agentId }: RegisteredDeviceMessage): string {
  return [
    `Device ID     : ${downstream.spiffe_id}`,
    `Entry ID      : ${downstream.id} (downstream)`,
    ...(agentId === '' ? [] : [`Agent ID      : ${agentId} (the x509pop agent ID of its birth certificate)`]),
    ...(alias === null ? [] : [`Node alias    : ${alias.spiffe_id} (entry ${alias.id}, parent ${alias.parent_id})`]),
    ...downstream.selectors.map(s => `Selector      : ${s}`),
    `X509-SVID TTL : ${downstream.x509_svid_ttl === 0 ? 'default' : `${downstream.x509_svid_ttl} s`}`,
    `It gets its device CA once it attests with ${alias === null ? 'this birth certificate' : 'a birth certificate that has all these selectors'}.`,
    ''
  ].join('\n')
}

function describeDevice (d: DeviceMessage): string {
  return [
    `Agent ID      : ${d.agent_id}`,
    ...(d.downstream_ids.length === 0 ? ['Downstream    : none authorized (register it: chaperone fleet register)'] : d.downstream_ids.map(id => `Downstream    : ${id}`)),
    ...d.selectors.map(s => `Selector      : ${s}`),
    `SVID serial   : ${d.x509_svid_serial_number === '' ? '-' : d.x509_svid_serial_number}`,
    `SVID expires  : ${isoTime(d.x509_svid_expires_at)}`,
    `Attested      : ${isoTime(d.attested_at)}`,
    `Banned        : ${d.banned ? `yes: refused until evicted (chaperone fleet evict ${d.agent_id})` : 'no'}`,
    ''
  ].join('\n')
}

function describeDevices ({ devices, not_attested: waiting }: ListDevicesMessage): string {
  const banned = devices.filter(d => d.banned).length
  const pending = (e: EntryMessage): string => `  ${e.spiffe_id} (entry ${e.id}, parent ${e.parent_id})\n`
  return [
    `${plural(devices.length, 'device')} attested${banned === 0 ? '' : ` (${banned} banned)`}, ${plural(waiting.length, 'registered device')} not attested yet\n`,
    ...devices.map(d => `\n${describeDevice(d)}`),
    ...(waiting.length === 0 ? [] : ['\nRegistered, not attested yet:\n', ...waiting.map(pending)])
  ].join('')
}

export function addFleetCommands (program: Command): void {
  const fleet = program.command('fleet').description('the devices of an agent in the upstream role (fleet: in its configuration): register, list, ban, evict')

  withAdminOptions(fleet.command('register').description('register a device: its downstream entry, authorized to it once it attests with its birth certificate (x509pop)'))
    .requiredOption('--id <spiffe-id>', 'the device\'s SPIFFE ID, e.g. spiffe://fleet.example/device/SN-1')
    .option('--birth-cert <file>', 'the device\'s birth certificate (PEM): the entry is parented on the agent ID it attests as; this certificate only')
    .option('--cn <cn>', 'devices whose birth certificate has this subject CN (x509pop:subject:cn)')
    .option('--serial <hex>', 'devices whose birth certificate has this serial number (x509pop:serialnumber; colons allowed)')
    .option('--ca-fingerprint <sha1>', 'devices whose chain holds the CA of this SHA-1 fingerprint (x509pop:ca:fingerprint; colons allowed)')
    .option('--selector <x509pop:…>', 'any x509pop selector (repeatable); devices need all the selectors given', collect)
    .option('--alias-id <spiffe-id>', 'with selectors: the node alias\'s SPIFFE ID (default: the device ID + /node-alias)')
    .option('--x509-ttl <duration>', 'the downstream X509-SVID\'s lifetime: 600, 10m, 1h (default: the agent\'s)', parseTtl)
    .action(async (options: RegisterOptions) => {
      const birthCertPem = options.birthCert === undefined ? undefined : readBirthCert(options.birthCert)
      const registered = await withAdmin(options, client => client.registerDevice({
        spiffeId: options.id,
        selectors: selectorsOf(options),
        ...(birthCertPem === undefined ? {} : { birthCertPem }),
        ...(options.aliasId === undefined ? {} : { aliasId: options.aliasId }),
        ...(options.x509Ttl === undefined ? {} : { x509SvidTtl: options.x509Ttl })
      }))
      print(options, registered, () => describeRegistered(registered))
    })

  withAdminOptions(fleet.command('list').description('the devices attested (agent ID, downstream IDs, selectors, agent SVID, banned), and those registered but not attested yet'))
    .action(async (options: AdminOptions) => {
      const listed = await withAdmin(options, client => client.listDevices())
      print(options, listed, () => describeDevices(listed))
    })

  withAdminOptions(fleet.command('ban').argument('<agent-id>').description('ban a device (spire-server agent ban): its calls and attestations are refused until it is evicted'))
    .action(async (agentId: string, options: AdminOptions) => {
      const banned = await withAdmin(options, client => client.banDevice(agentId))
      print(options, banned, () => `banned ${banned.agent_id}: its calls and attestations are refused until it is evicted (chaperone fleet evict ${banned.agent_id})\n`)
    })

  withAdminOptions(fleet.command('evict').argument('<agent-id>').description('evict a device (spire-server agent evict): forgotten, it may attest again'))
    .action(async (agentId: string, options: AdminOptions) => {
      const evicted = await withAdmin(options, client => client.evictDevice(agentId))
      print(options, evicted, () => `evicted ${evicted.agent_id}: its agent SVID is no longer accepted; it may attest again\n`)
    })
}
