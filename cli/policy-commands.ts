/**
 * `chaperone policy lint|check|matrix`: the policy file as operators work with it.
 * lint exits 0 clean (warnings allowed), 1 with warnings under --strict, 2 with errors; check exits 0 allow,
 * 1 deny, 2 bad input; a policy with errors is bad input everywhere. `lint --sidecar` adds, for that sidecar's
 * configuration, warnings for rules its listeners can never serve (the policy's check, fed the listeners' ports).
 */
import { InvalidArgumentError } from 'commander'
import type { Command } from 'commander'
import { parseSpiffeId } from '../spiffe/id'
import { normalizeRequestPath } from '../policy/http-path'
import { DEFAULT_ADMIN_SOCKET, parsePort } from './admin-options'
import type { CheckOptions, LintOptions, MatrixOptions } from './policy-actions'

function parseMethod (value: string): string {
  if (!/^[A-Za-z][A-Za-z0-9_-]*$/.test(value)) throw new InvalidArgumentError('an HTTP method is a token like GET or POST.')
  return value.toUpperCase()
}

function parsePath (value: string): string {
  const normalized = normalizeRequestPath(value)
  if ('problem' in normalized) throw new InvalidArgumentError(`${normalized.problem}.`)
  return normalized.path
}

function parseIds (value: string): string[] {
  return value.split(',').map(id => id.trim()).filter(id => id !== '').map(id => parseSpiffeId(id).toString())
}

export function addPolicyCommands (program: Command): void {
  const policy = program.command('policy').description('check and query a policy file (who can talk to whom)')

  policy.command('lint <file>')
    .description('check a policy file: errors with file:line:column, and warnings for rules that cannot work as written')
    .option('--sidecar <config>', 'also warn about rules whose ports this sidecar\'s listeners never serve (its configuration file)')
    .option('--spiffe-id <id>', 'with --sidecar: the sidecar\'s SPIFFE ID (default: the configuration\'s spiffeId)')
    .option('--strict', 'exit 1 when there are warnings')
    .option('--json', 'print JSON instead of text')
    .action(async (file: string, options: LintOptions, command: Command) => { (await import('./policy-actions.js')).lint(file, options, command) })

  policy.command('check <file>')
    .description('decide one connection or HTTP request: ALLOW or DENY, the deciding rule and why (exit 0 allow, 1 deny)')
    .requiredOption('--from <id>', 'the client\'s SPIFFE ID')
    .requiredOption('--to <id>', 'the server\'s SPIFFE ID')
    .option('--port <port>', 'the destination port', parsePort)
    .option('--method <method>', 'an HTTP request\'s method (with --path; without both, a plain TCP connection is checked)', parseMethod)
    .option('--path <path>', 'an HTTP request\'s path (normalized as the sidecar does)', parsePath)
    .option('--json', 'print JSON instead of text')
    .action(async (file: string, options: CheckOptions, command: Command) => { (await import('./policy-actions.js')).check(file, options, command) })

  policy.command('matrix <file>')
    .description('a table of who can talk to whom, for the given IDs or else every ID registered with the agent')
    .option('--ids <ids>', 'comma-separated SPIFFE IDs (default: the agent\'s registered IDs, through --admin-socket)', parseIds)
    .option('--port <port>', 'decide at this destination port (default: plain TCP without a port)', parsePort)
    .option('--admin-socket <path>', 'the agent\'s admin socket, when --ids is not given (env CHAPERONE_ADMIN_SOCKET)', process.env.CHAPERONE_ADMIN_SOCKET ?? DEFAULT_ADMIN_SOCKET)
    .option('--json', 'print JSON instead of text')
    .action(async (file: string, options: MatrixOptions, command: Command) => { await (await import('./policy-actions.js')).matrix(file, options, command) })
}
