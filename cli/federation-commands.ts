/**
 * `chaperone federation create|list|show|update|delete|refresh`: the agent's federation relationships through its
 * admin API (as `spire-server federation …`): where another trust domain serves its bundle and how to authenticate
 * it, with a bootstrap bundle; and how fetching goes (last fetch, sequence, next refresh, failures).
 */
import { readFileSync } from 'node:fs'
import { Option } from 'commander'
import type { Command } from 'commander'
import type { RelationshipMessage, RelationshipRequest } from '../agent/admin/client'
import { print, withAdmin, withAdminOptions } from './admin-options'
import type { AdminOptions } from './admin-options'

interface RelationshipOptions extends AdminOptions {
  trustDomain: string
  bundleEndpointUrl?: string
  profile?: 'https_web' | 'https_spiffe'
  endpointSpiffeId?: string
  bundlePath?: string
  bundleFormat: 'spiffe' | 'pem'
}

const time = (unixSeconds: number): string => unixSeconds === 0 ? '-' : new Date(unixSeconds * 1000).toISOString()

/** A relationship and its fetching, as `federation show` and `bundle show --federated` print it. */
export function describeRelationship (r: RelationshipMessage): string {
  const failures = Object.entries(r.failures).map(([reason, n]) => `${reason} ${n}`).join(', ')
  const lastFetch = r.last_attempt_at === 0
    ? 'none yet'
    : r.consecutive_failures === 0 ? `${time(r.last_attempt_at)} ok` : `${time(r.last_attempt_at)} failed (${r.last_error_reason}): ${r.last_error}`
  return [
    `Trust domain    : ${r.trust_domain}`,
    `Bundle endpoint : ${r.bundle_endpoint_url}`,
    `Profile         : ${r.profile}${r.endpoint_spiffe_id === '' ? '' : ` (endpoint ${r.endpoint_spiffe_id})`}`,
    `Defined in      : ${r.source === 'config' ? 'the agent\'s config file (changed there only)' : 'the admin or SPIRE API'}`,
    `Bundle          : ${r.has_bundle
      ? `sequence ${r.bundle_sequence === 0 ? '-' : r.bundle_sequence}, stored ${time(r.bundle_updated_at)}${r.bundle_refresh_hint === 0 ? '' : `, refresh hint ${r.bundle_refresh_hint} s`}`
      : 'none yet: workloads get none, https_spiffe cannot authenticate the endpoint'}`,
    `Last fetch      : ${lastFetch}`,
    `Last success    : ${time(r.last_success_at)}`,
    `Last change     : ${time(r.last_update_at)}`,
    `Next refresh    : ${time(r.next_refresh_at)}`,
    `Failures        : ${r.consecutive_failures} in a row${failures === '' ? '' : `; since start: ${failures}`}`,
    ''
  ].join('\n')
}

function relationshipOptions (command: Command, creating: boolean): Command {
  const required = (flags: string, help: string): Command => creating ? command.requiredOption(flags, help) : command.option(flags, help)
  withAdminOptions(command).requiredOption('--trust-domain <td>', 'the other trust domain, e.g. plant-b.example')
  required('--bundle-endpoint-url <url>', 'the https URL of its bundle endpoint')
  command.addOption(new Option('--profile <profile>', 'how the endpoint is authenticated: https_spiffe (its SVID) or https_web (Web PKI)').choices(['https_spiffe', 'https_web']))
  return command
    .option('--endpoint-spiffe-id <id>', 'https_spiffe: the SPIFFE ID the endpoint presents (a SPIRE server\'s: spiffe://<td>/spire/server)')
    .option('--bundle-path <file>', 'the trust domain\'s bundle, to authenticate its endpoint until the first fetch (https_spiffe needs one)')
    .addOption(new Option('--bundle-format <format>', 'the bundle file\'s format').choices(['spiffe', 'pem']).default('spiffe'))
}

function request (options: RelationshipOptions, command: Command): Partial<RelationshipRequest> & { trustDomain: string } {
  let text: string | undefined
  if (options.bundlePath !== undefined) {
    try {
      text = readFileSync(options.bundlePath, 'utf8')
    } catch (err) {
      command.error(`error: cannot read the bundle ${options.bundlePath}: ${(err as Error).message}`, { exitCode: 2 })
    }
  }
  return {
    trustDomain: options.trustDomain,
    ...(options.bundleEndpointUrl === undefined ? {} : { bundleEndpointUrl: options.bundleEndpointUrl }),
    ...(options.profile === undefined ? {} : { profile: options.profile }),
    ...(options.endpointSpiffeId === undefined ? {} : { endpointSpiffeId: options.endpointSpiffeId }),
    ...(text === undefined ? {} : { bundle: { format: options.bundleFormat, text } })
  }
}

export function addFederationCommands (program: Command): void {
  const federation = program.command('federation').description('federation relationships with other trust domains: their bundle endpoints, fetched and kept current')
  const byTrustDomain = (name: string, description: string): Command =>
    withAdminOptions(federation.command(name).description(description)).requiredOption('--trust-domain <td>', 'the other trust domain')

  relationshipOptions(federation.command('create').description('federate with another trust domain: its bundle is fetched from its endpoint, then kept current'), true)
    .action(async (options: RelationshipOptions, command: Command) => {
      if (options.profile === undefined) command.error('error: required option \'--profile <profile>\' not specified (https_spiffe or https_web)', { exitCode: 2 })
      const created = await withAdmin(options, client => client.createRelationship(request(options, command) as RelationshipRequest))
      print(options, created, () => `created the federation relationship with ${created.trust_domain}; its bundle is being fetched\n\n${describeRelationship(created)}`)
    })

  relationshipOptions(federation.command('update').description('change a relationship\'s endpoint URL or profile, or set its bundle'), false)
    .action(async (options: RelationshipOptions, command: Command) => {
      const updated = await withAdmin(options, client => client.updateRelationship(request(options, command)))
      print(options, updated, () => `updated the federation relationship with ${updated.trust_domain}\n\n${describeRelationship(updated)}`)
    })

  withAdminOptions(federation.command('list').description('every relationship, with its last fetch, bundle sequence, next refresh and failures'))
    .action(async (options: AdminOptions) => {
      const listed = await withAdmin(options, client => client.listRelationships())
      print(options, listed, () => listed.length === 0
        ? 'no federation relationships\n'
        : `${listed.length} federation relationship${listed.length === 1 ? '' : 's'}\n\n${listed.map(describeRelationship).join('\n')}`)
    })

  byTrustDomain('show', 'one relationship, with its last fetch, bundle sequence, next refresh and failures')
    .action(async (options: RelationshipOptions) => {
      const shown = await withAdmin(options, client => client.getRelationship(options.trustDomain))
      print(options, shown, () => describeRelationship(shown))
    })

  byTrustDomain('delete', 'end a relationship: fetching stops and the trust domain\'s bundle is deleted (workloads and sidecars lose it)')
    .action(async (options: RelationshipOptions) => {
      const deleted = await withAdmin(options, client => client.deleteRelationship(options.trustDomain))
      print(options, deleted, () => `deleted the federation relationship with ${deleted.trust_domain}, and its bundle\n`)
    })

  byTrustDomain('refresh', 'fetch the bundle now')
    .action(async (options: RelationshipOptions) => {
      const refreshed = await withAdmin(options, client => client.refreshRelationship(options.trustDomain))
      print(options, refreshed, () => `refreshed the bundle of ${refreshed.trust_domain}\n\n${describeRelationship(refreshed)}`)
    })
}
