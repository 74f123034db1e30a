/** `chaperone bundle show` and `chaperone ca show`: the trust domain's bundle and the CA's authorities. */
import { Option } from 'commander'
import type { Command } from 'commander'
import type { AuthorityMessage } from '../agent/admin/ca-message'
import { print, withAdmin, withAdminOptions } from './admin-options'
import type { AdminOptions } from './admin-options'

function describeAuthority (a: AuthorityMessage): string {
  const name = a.kind === 'x509' ? `X.509 ${a.subject} (serial ${a.serial}, ${a.key_type})` : `JWT key ${a.kid} (${a.key_type})`
  const times = [a.not_before === '' ? '' : `from ${a.not_before}`, `until ${a.not_after}`, a.activates_at === '' ? '' : `activates ${a.activates_at}`]
  return `  ${a.state.padEnd(8)} ${name}\n           ${times.filter(Boolean).join(', ')}\n`
}

export function addBundleAndCaCommands (program: Command): void {
  withAdminOptions(program.command('bundle').description('the trust domain\'s bundle').command('show').description('print the bundle: PEM (default) or the SPIFFE bundle format'))
    .addOption(new Option('--format <format>', 'pem: the X.509 authorities; spiffe: the SPIFFE bundle (JWKS)').choices(['pem', 'spiffe']).default('pem'))
    .action(async (options: AdminOptions & { format: 'pem' | 'spiffe' }) => {
      const bundle = await withAdmin(options, client => client.getBundle())
      print(options, bundle, () => options.format === 'pem' ? bundle.pem : bundle.spiffe_json)
    })

  withAdminOptions(program.command('ca').description('the agent\'s certificate authority').command('show').description('the active, prepared and retired authorities with their lifetimes'))
    .action(async (options: AdminOptions) => {
      const ca = await withAdmin(options, client => client.getCaStatus())
      print(options, ca, () => [
        `Trust domain    : ${ca.trust_domain}${ca.upstream ? ' (intermediate under an upstream CA)' : ''}`,
        `Bundle sequence : ${ca.bundle_sequence}`,
        'Authorities     :',
        ...ca.authorities.map(describeAuthority)
      ].join('\n'))
    })
}
