/**
 * `chaperone bundle show|set|list|delete|append|remove-authority` and `chaperone ca show`: the trust domain's bundle
 * (and the authorities appended to it beside the CA's), the federated bundles of other trust domains (flags as
 * `spire-server bundle …`: --id, --path, --format), and the CA's authorities.
 */
import { readFileSync } from 'node:fs'
import { Option } from 'commander'
import type { Command } from 'commander'
import type { AuthorityMessage } from '../agent/admin/ca-message'
import type { BundleMessage } from '../agent/admin/bundle-message'
import type { AppendedAuthoritiesMessage, AppendedAuthorityMessage } from '../agent/admin/appended-authority-message'
import { print, withAdmin, withAdminOptions } from './admin-options'
import type { AdminClient, RelationshipMessage } from '../agent/admin/client'
import { describeRelationship } from './federation-commands'
import type { AdminOptions } from './admin-options'

type Format = 'pem' | 'spiffe'
interface IdOptions extends AdminOptions { id: string }

function describeAuthority (a: AuthorityMessage): string {
  const name = a.kind === 'x509' ? `X.509 ${a.subject} (serial ${a.serial}, ${a.key_type})` : `JWT key ${a.kid} (${a.key_type})`
  const times = [a.not_before === '' ? '' : `from ${a.not_before}`, `until ${a.not_after}`, a.activates_at === '' ? '' : `activates ${a.activates_at}`]
  return `  ${a.state.padEnd(8)} ${name}\n           ${times.filter(Boolean).join(', ')}\n`
}

const count = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`

/** How far `iso` is from now, in whole hours and minutes: "in 11 h 20 min", or "passed". */
function untilNow (iso: string): string {
  const minutes = Math.floor((Date.parse(iso) - Date.now()) / 60_000)
  return minutes < 0 ? 'passed' : `in ${Math.floor(minutes / 60)} h ${minutes % 60} min`
}

function describeFederated (b: BundleMessage): string {
  return [
    `Trust domain      : spiffe://${b.trust_domain}`,
    `X.509 authorities : ${b.x509_authority_count}`,
    `JWT keys          : ${b.jwt_key_count}`,
    `Sequence          : ${b.sequence === 0 ? '-' : b.sequence}`,
    `Updated           : ${new Date(b.updated_at * 1000).toISOString()}`,
    ''
  ].join('\n')
}

const isoTime = (unixSeconds: number): string => new Date(unixSeconds * 1000).toISOString()

/** "1 X.509 authority, 2 JWT keys" */
function countAuthorities (authorities: readonly AppendedAuthorityMessage[]): string {
  const x509 = authorities.filter(a => a.kind === 'x509').length
  return `${count(x509, 'X.509 authority', 'X.509 authorities')}, ${count(authorities.length - x509, 'JWT key')}`
}

function nameAppended (a: AppendedAuthorityMessage): string {
  return a.kind === 'x509' ? `X.509 ${a.subject} (sha256 ${a.sha256})` : `JWT key ${a.key_id}`
}

/** What an append or a removal did (`headline`), then the bundle's sequence and every appended authority held. */
function describeAppended (headline: string, result: AppendedAuthoritiesMessage): string {
  const held = result.authorities.map(a =>
    `  ${(a.expired ? 'expired' : 'served').padEnd(8)} ${nameAppended(a)}\n           appended ${isoTime(a.appended_at)}${a.expires_at === 0 ? '' : `, until ${isoTime(a.expires_at)}`}\n`)
  return [`${headline}\n`, `Bundle sequence      : ${result.bundle.sequence}\n`, `Appended authorities : ${held.length === 0 ? 'none' : ''}\n`, ...held].join('')
}

function formatOption (what: string): Option {
  return new Option('--format <format>', what).choices(['pem', 'spiffe']).default('pem')
}

function idOption (command: Command, what: string, required: boolean): Command {
  const flags = '--id <trust-domain>'
  const help = `${what}, e.g. spiffe://other.example`
  return required ? command.requiredOption(flags, help) : command.option(flags, help)
}

/** The document to set: the file at --path, or standard input when --path is left out or is "-". */
function readBundle (path: string | undefined, command: Command): string {
  const stdin = path === undefined || path === '-'
  try {
    return readFileSync(stdin ? 0 : path, 'utf8')
  } catch (err) {
    command.error(`error: cannot read the bundle from ${stdin ? 'standard input' : path}: ${(err as Error).message}`, { exitCode: 2 })
  }
}

interface FederatedView { bundle: BundleMessage, relationship: RelationshipMessage | null }

/** Every federated bundle held, each with the relationship that keeps it current (null: set by an operator). */
async function federatedBundles (client: AdminClient): Promise<FederatedView[]> {
  const [bundles, relationships] = await Promise.all([client.listFederatedBundles(), client.listRelationships()])
  return bundles.map(bundle => ({ bundle, relationship: relationships.find(r => r.trust_domain === bundle.trust_domain) ?? null }))
}

function describeWithRelationship ({ bundle, relationship }: FederatedView, format: Format): string {
  const keeping = relationship === null ? 'Kept by         : an operator (chaperone bundle set); no relationship fetches it\n' : describeRelationship(relationship)
  return `${describeFederated(bundle)}${keeping}\n${format === 'pem' ? bundle.pem : `${bundle.spiffe_json}\n`}`
}

export function addBundleAndCaCommands (program: Command): void {
  const bundle = program.command('bundle').description('the trust domain\'s bundle, and the federated bundles of other trust domains')

  idOption(withAdminOptions(bundle.command('show').description('print a bundle: ours, with --id a federated one, with --federated every federated one and how it is kept current; PEM (default) or the SPIFFE bundle format')), 'a federated trust domain', false)
    .addOption(formatOption('pem: the X.509 authorities; spiffe: the SPIFFE bundle (JWKS)'))
    .option('--federated', 'every federated bundle, each with its relationship\'s fetching (last fetch, sequence, next refresh, failures)')
    .action(async (options: AdminOptions & { id?: string, format: Format, federated?: boolean }, command: Command) => {
      if (options.federated === true) {
        if (options.id !== undefined) command.error('error: --federated shows every federated bundle; leave out --id', { exitCode: 2 })
        const federated = await withAdmin(options, federatedBundles)
        print(options, federated, () => federated.length === 0 ? 'no federated bundles\n' : federated.map(f => describeWithRelationship(f, options.format)).join('\n'))
        return
      }
      const shown = await withAdmin(options, client => options.id === undefined ? client.getBundle() : client.getFederatedBundle(options.id))
      print(options, shown, () => options.format === 'pem' ? shown.pem : shown.spiffe_json)
    })

  idOption(withAdminOptions(bundle.command('set').description('set (add or replace) another trust domain\'s bundle; workloads whose entries federate with it get it')), 'the trust domain the bundle is of', true)
    .option('--path <file>', 'the bundle\'s file; standard input when left out or "-"')
    .addOption(formatOption('pem: CERTIFICATE blocks (X.509 authorities); spiffe: the SPIFFE bundle format (X.509 and JWT authorities)'))
    .action(async (options: IdOptions & { path?: string, format: Format }, command: Command) => {
      const text = readBundle(options.path, command)
      const set = await withAdmin(options, client => client.setFederatedBundle(options.id, options.format, text))
      print(options, set, () => `set the federated bundle of spiffe://${set.trust_domain}: ` +
        `${count(set.x509_authority_count, 'X.509 authority', 'X.509 authorities')}, ${count(set.jwt_key_count, 'JWT key')}\n`)
    })

  withAdminOptions(bundle.command('list').description('the federated bundles the agent holds'))
    .action(async (options: AdminOptions) => {
      const bundles = await withAdmin(options, client => client.listFederatedBundles())
      print(options, bundles, () => bundles.length === 0 ? 'no federated bundles\n' : `${count(bundles.length, 'federated bundle')}\n\n${bundles.map(describeFederated).join('\n')}`)
    })

  idOption(withAdminOptions(bundle.command('delete').description('delete a federated bundle: workloads no longer get it')), 'the federated trust domain', true)
    .action(async (options: IdOptions) => {
      const deleted = await withAdmin(options, client => client.deleteFederatedBundle(options.id))
      print(options, deleted, () => `deleted the federated bundle of spiffe://${deleted.trust_domain}\n`)
    })

  withAdminOptions(bundle.command('append').description('append authorities to our own trust domain\'s bundle, beside the CA\'s (e.g. a second root during a CA migration, an upstream root); workloads get them'))
    .option('--path <file>', 'the authorities\' file; standard input when left out or "-"')
    .addOption(formatOption('pem: CERTIFICATE blocks (CA certificates); spiffe: the SPIFFE bundle format (X.509 and JWT authorities)'))
    .action(async (options: AdminOptions & { path?: string, format: Format }, command: Command) => {
      const text = readBundle(options.path, command)
      const result = await withAdmin(options, client => client.appendAuthorities(options.format, text))
      const already = result.present.length === 0 ? '' : ` (already there: ${countAuthorities(result.present)})`
      print(options, result, () => describeAppended(`appended to the bundle of spiffe://${result.bundle.trust_domain}: ${countAuthorities(result.added)}${already}`, result))
    })

  withAdminOptions(bundle.command('remove-authority').description('remove an appended authority from our own trust domain\'s bundle (the CA\'s own cannot be removed)'))
    .option('--sha256 <hex>', 'an X.509 authority, by the SHA-256 fingerprint of its DER (colons allowed)')
    .option('--key-id <kid>', 'a JWT authority, by its key ID')
    .action(async (options: AdminOptions & { sha256?: string, keyId?: string }, command: Command) => {
      const { sha256, keyId } = options
      if ((sha256 === undefined) === (keyId === undefined)) command.error('error: name the authority to remove: --sha256 HEX or --key-id KID', { exitCode: 2 })
      const result = await withAdmin(options, client => client.removeAppendedAuthority(sha256 === undefined ? { keyId: keyId as string } : { sha256 }))
      print(options, result, () => describeAppended(`removed ${result.removed === null ? 'nothing' : nameAppended(result.removed)} from the bundle of spiffe://${result.bundle.trust_domain}`, result))
    })

  withAdminOptions(program.command('ca').description('the agent\'s certificate authority').command('show').description('the active, prepared and retired authorities with their lifetimes'))
    .action(async (options: AdminOptions) => {
      const ca = await withAdmin(options, client => client.getCaStatus())
      print(options, ca, () => [
        `Trust domain    : ${ca.trust_domain}${ca.upstream ? ' (intermediate under an upstream CA)' : ''}`,
        ...(ca.upstream ? [`Upstream        : ${ca.upstream_name}`, `Issues until    : ${ca.issues_until} (${untilNow(ca.issues_until)}; longer only by renewing with the upstream)`] : []),
        `Bundle sequence : ${ca.bundle_sequence}`,
        'Authorities     :',
        ...ca.authorities.map(describeAuthority)
      ].join('\n'))
    })
}
