/** `chaperone entry create|list|show|update|delete`: registration entries through the agent's admin API. */
import { InvalidArgumentError } from 'commander'
import type { Command } from 'commander'
import type { EntryMessage } from '../agent/admin/entry-message'
import { collect, parseTtl, print, withAdmin, withAdminOptions } from './admin-options'
import type { AdminOptions } from './admin-options'

interface EntryOptions extends AdminOptions {
  spiffeId?: string
  parentId?: string
  selector?: string[]
  x509Ttl?: number
  jwtTtl?: number
  dnsName?: string[]
  hint?: string
  federatesWith?: string[]
  admin?: boolean
  downstream?: boolean
  storeSvid?: boolean
  expiresAt?: number
}

/** Option name → the Entry field it sets (the names UpdateEntry takes). */
const FIELD_OF: Record<string, keyof EntryMessage> = {
  spiffeId: 'spiffe_id', parentId: 'parent_id', selector: 'selectors', x509Ttl: 'x509_svid_ttl', jwtTtl: 'jwt_svid_ttl', dnsName: 'dns_names', hint: 'hint',
  federatesWith: 'federates_with', admin: 'admin', downstream: 'downstream', storeSvid: 'store_svid', expiresAt: 'expires_at'
}

/** Commander parser for --expires-at: an ISO 8601 time or unix seconds; `never` (or 0) clears it. */
function parseExpiry (value: string): number {
  if (value === 'never' || value === '0') return 0
  const seconds = /^\d+$/.test(value) ? Number(value) : Math.floor(Date.parse(value) / 1000)
  if (!Number.isSafeInteger(seconds) || seconds <= 0) throw new InvalidArgumentError('an expiry is an ISO 8601 time (2027-01-31T12:00:00Z), unix seconds, or never.')
  return seconds
}

function entryOptions (command: Command, create: boolean): Command {
  const idHelp = 'the workload\'s SPIFFE ID, e.g. spiffe://plant.example/app-a'
  return withAdminOptions(create ? command.requiredOption('--spiffe-id <id>', idHelp) : command.option('--spiffe-id <id>', idHelp))
    .option('--selector <type:value>', 'a selector the workload must have, e.g. unix:uid:1001 (repeatable; all must match)', collect)
    .option('--parent-id <id>', 'the parent SPIFFE ID')
    .option('--x509-ttl <duration>', 'X509-SVID lifetime: 600, 10m, 1h (default: the agent\'s)', parseTtl)
    .option('--jwt-ttl <duration>', 'JWT-SVID lifetime: 300, 5m (default: the agent\'s)', parseTtl)
    .option('--dns-name <name>', 'a DNS SAN for the X509-SVID (repeatable)', collect)
    .option('--hint <hint>', 'a hint for workloads with several identities')
    .option('--federates-with <trust-domain>', 'another trust domain whose bundle the workload gets (repeatable), e.g. spiffe://other.example', collect)
    .option('--admin', 'the workload may call the agent\'s SPIRE server API socket (SPIRE\'s admin entries)')
    .option('--no-admin', 'it may not (the default)')
    .option('--downstream', 'mark the entry downstream: its holder may ask an agent with fleet: for a downstream CA (for a device, chaperone fleet register is simpler)')
    .option('--no-downstream', 'not downstream (the default)')
    .option('--store-svid', 'the SVID is for an SVIDStore: stored, never issued by this agent')
    .option('--no-store-svid', 'issued over the Workload API (the default)')
    .option('--expires-at <time>', 'when the entry stops being served: ISO 8601 time or unix seconds; never clears it', parseExpiry)
}

/** The Entry fields the options set, and their names. */
function fieldsOf (options: EntryOptions): { entry: Partial<EntryMessage>, fields: string[] } {
  const entry: Record<string, unknown> = {}
  for (const [option, field] of Object.entries(FIELD_OF)) {
    const value = (options as unknown as Record<string, unknown>)[option]
    if (value !== undefined) entry[field] = value
  }
  return { entry, fields: Object.keys(entry) }
}

function describeEntry (e: EntryMessage): string {
  const ttl = (seconds: number): string => seconds === 0 ? 'default' : `${seconds} s`
  return [
    `Entry ID      : ${e.id}`,
    `SPIFFE ID     : ${e.spiffe_id}`,
    `Parent ID     : ${e.parent_id === '' ? '-' : e.parent_id}`,
    `Revision      : ${e.revision}`,
    `X509-SVID TTL : ${ttl(e.x509_svid_ttl)}`,
    `JWT-SVID TTL  : ${ttl(e.jwt_svid_ttl)}`,
    ...e.selectors.map(s => `Selector      : ${s}`),
    ...e.dns_names.map(d => `DNS name      : ${d}`),
    ...(e.hint === '' ? [] : [`Hint          : ${e.hint}`]),
    ...e.federates_with.map(td => `Federates with: spiffe://${td}`),
    ...(e.admin ? ['Admin         : true'] : []),
    ...(e.downstream ? ['Downstream    : true'] : []),
    ...(e.store_svid ? ['Store SVID    : true'] : []),
    ...(e.expires_at === 0 ? [] : [`Expires       : ${new Date(e.expires_at * 1000).toISOString()}`]),
    `Created       : ${new Date(e.created_at * 1000).toISOString()}`,
    `Served        : ${e.served ? 'yes, by this agent' : `no: ${e.not_served_reason}`}`,
    ''
  ].join('\n')
}

export function addEntryCommands (program: Command): void {
  const entry = program.command('entry').description('manage registration entries (who gets which SPIFFE ID)')

  entryOptions(entry.command('create').description('register a workload: a SPIFFE ID for processes with the given selectors'), true)
    .action(async (options: EntryOptions, command: Command) => {
      if ((options.selector ?? []).length === 0) command.error('error: an entry needs at least one --selector (e.g. --selector unix:uid:1001)', { exitCode: 2 })
      const created = await withAdmin(options, client => client.createEntry(fieldsOf(options).entry))
      print(options, created, () => describeEntry(created))
    })

  withAdminOptions(entry.command('list').description('list entries, optionally filtered'))
    .option('--spiffe-id <id>', 'only entries with this SPIFFE ID')
    .option('--selector <type:value>', 'only entries with this selector')
    .action(async (options: AdminOptions & { spiffeId?: string, selector?: string }) => {
      const entries = await withAdmin(options, client => client.listEntries(options))
      print(options, entries, () => entries.length === 0 ? 'no entries\n' : `${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}\n\n${entries.map(describeEntry).join('\n')}`)
    })

  withAdminOptions(entry.command('show').argument('<entry-id>').description('show one entry'))
    .action(async (id: string, options: AdminOptions) => {
      const found = await withAdmin(options, client => client.getEntry(id))
      print(options, found, () => describeEntry(found))
    })

  entryOptions(entry.command('update').argument('<entry-id>').description('change an entry: the given options replace its values (selectors as a whole)'), false)
    .action(async (id: string, options: EntryOptions, command: Command) => {
      const { entry: fields, fields: names } = fieldsOf(options)
      if (names.length === 0) command.error('error: nothing to update: give at least one of --spiffe-id, --selector, --parent-id, --x509-ttl, --jwt-ttl, --dns-name, --hint, --federates-with, --[no-]admin, --[no-]downstream, --[no-]store-svid, --expires-at', { exitCode: 2 })
      const updated = await withAdmin(options, client => client.updateEntry({ ...fields, id }, names))
      print(options, updated, () => describeEntry(updated))
    })

  withAdminOptions(entry.command('delete').argument('<entry-id>').description('delete an entry'))
    .action(async (id: string, options: AdminOptions) => {
      const deleted = await withAdmin(options, client => client.deleteEntry(id))
      print(options, deleted, () => `deleted entry ${deleted.id} (${deleted.spiffe_id})\n`)
    })
}
