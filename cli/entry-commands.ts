/** `chaperone entry create|list|show|update|delete`: registration entries through the agent's admin API. */
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
}

/** Option name → the Entry field it sets (the names UpdateEntry takes). */
const FIELD_OF: Record<string, keyof EntryMessage> = {
  spiffeId: 'spiffe_id', parentId: 'parent_id', selector: 'selectors', x509Ttl: 'x509_svid_ttl', jwtTtl: 'jwt_svid_ttl', dnsName: 'dns_names', hint: 'hint',
  federatesWith: 'federates_with'
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
    `Created       : ${new Date(e.created_at * 1000).toISOString()}`,
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
      if (names.length === 0) command.error('error: nothing to update: give at least one of --spiffe-id, --selector, --parent-id, --x509-ttl, --jwt-ttl, --dns-name, --hint, --federates-with', { exitCode: 2 })
      const updated = await withAdmin(options, client => client.updateEntry({ ...fields, id }, names))
      print(options, updated, () => describeEntry(updated))
    })

  withAdminOptions(entry.command('delete').argument('<entry-id>').description('delete an entry'))
    .action(async (id: string, options: AdminOptions) => {
      const deleted = await withAdmin(options, client => client.deleteEntry(id))
      print(options, deleted, () => `deleted entry ${deleted.id} (${deleted.spiffe_id})\n`)
    })
}
