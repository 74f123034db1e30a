/**
 * `chaperone policy lint|check|matrix`: the policy file as operators work with it.
 * lint exits 0 clean (warnings allowed), 1 with warnings under --strict, 2 with errors; check exits 0 allow,
 * 1 deny, 2 bad input; a policy with errors is bad input everywhere. `lint --sidecar` adds, for that sidecar's
 * configuration, warnings for rules its listeners can never serve (the policy's check, fed the listeners' ports).
 */
import { InvalidArgumentError } from 'commander'
import type { Command } from 'commander'
import { parseSpiffeId } from '../spiffe/id'
import { compilePolicy } from '../policy/engine'
import { loadPolicy } from '../policy/document'
import { explainDecision } from '../policy/explain'
import type { PlainRequest } from '../policy/explain'
import { normalizeRequestPath } from '../policy/http-path'
import { lintPolicyFile } from '../policy/lint'
import { policyMatrix } from '../policy/matrix'
import { servedPortWarnings } from '../policy'
import type { LoadedPolicy, PolicyProblem } from '../policy'
import { loadSidecarConfig, servedPorts } from '../proxy'
import { DEFAULT_ADMIN_SOCKET, parsePort, print, withAdmin } from './admin-options'
import { renderCheck, renderLint, renderMatrix } from './policy-output'

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

interface LintOptions { strict?: boolean, json?: boolean, sidecar?: string, spiffeId?: string }
interface CheckOptions { from: string, to: string, port?: number, method?: string, path?: string, json?: boolean }
interface MatrixOptions { ids?: string[], port?: number, adminSocket: string, json?: boolean }

export function addPolicyCommands (program: Command): void {
  const policy = program.command('policy').description('check and query a policy file (who can talk to whom)')

  policy.command('lint <file>')
    .description('check a policy file: errors with file:line:column, and warnings for rules that cannot work as written')
    .option('--sidecar <config>', 'also warn about rules whose ports this sidecar\'s listeners never serve (its configuration file)')
    .option('--spiffe-id <id>', 'with --sidecar: the sidecar\'s SPIFFE ID (default: the configuration\'s spiffeId)')
    .option('--strict', 'exit 1 when there are warnings')
    .option('--json', 'print JSON instead of text')
    .action((file: string, options: LintOptions, command: Command) => {
      const result = lintPolicyFile(file, sidecarWarnings(file, options, command))
      print(options, result, () => renderLint(result))
      process.exitCode = result.errors > 0 ? 2 : result.warnings > 0 && options.strict === true ? 1 : 0
    })

  policy.command('check <file>')
    .description('decide one connection or HTTP request: ALLOW or DENY, the deciding rule and why (exit 0 allow, 1 deny)')
    .requiredOption('--from <id>', 'the client\'s SPIFFE ID')
    .requiredOption('--to <id>', 'the server\'s SPIFFE ID')
    .option('--port <port>', 'the destination port', parsePort)
    .option('--method <method>', 'an HTTP request\'s method (with --path; without both, a plain TCP connection is checked)', parseMethod)
    .option('--path <path>', 'an HTTP request\'s path (normalized as the sidecar does)', parsePath)
    .option('--json', 'print JSON instead of text')
    .action((file: string, options: CheckOptions, command: Command) => {
      if ((options.method === undefined) !== (options.path === undefined)) {
        command.error('error: --method and --path go together: an HTTP request has both (leave both out for plain TCP)', { exitCode: 2 })
      }
      const compiled = compilePolicy(loadPolicy(file))
      const request: PlainRequest = {
        from: parseSpiffeId(options.from).toString(),
        to: parseSpiffeId(options.to).toString(),
        port: options.port,
        http: options.method === undefined || options.path === undefined ? undefined : { method: options.method, path: options.path }
      }
      const explanation = explainDecision(compiled, request)
      print(options, checkJson(compiled, request, explanation), () => renderCheck(compiled, request, explanation))
      process.exitCode = explanation.decision.allow ? 0 : 1
    })

  policy.command('matrix <file>')
    .description('a table of who can talk to whom, for the given IDs or else every ID registered with the agent')
    .option('--ids <ids>', 'comma-separated SPIFFE IDs (default: the agent\'s registered IDs, through --admin-socket)', parseIds)
    .option('--port <port>', 'decide at this destination port (default: plain TCP without a port)', parsePort)
    .option('--admin-socket <path>', 'the agent\'s admin socket, when --ids is not given (env CHAPERONE_ADMIN_SOCKET)', process.env.CHAPERONE_ADMIN_SOCKET ?? DEFAULT_ADMIN_SOCKET)
    .option('--json', 'print JSON instead of text')
    .action(async (file: string, options: MatrixOptions, command: Command) => {
      const compiled = compilePolicy(loadPolicy(file))
      const ids = options.ids ?? await withAdmin(options, async client => [...new Set((await client.listEntries()).map(entry => entry.spiffe_id))].sort())
      if (ids.length === 0) command.error('error: no IDs: give --ids, or register entries with the agent first', { exitCode: 2 })
      const cells = policyMatrix(compiled, ids, options.port)
      print(options, { policy: { file, hash: compiled.hash }, port: options.port ?? null, ids, cells }, () => renderMatrix(compiled, ids, cells, options.port))
    })
}

/** For `lint --sidecar`: the warnings of rules the sidecar's listeners never serve, or undefined without --sidecar. */
function sidecarWarnings (policyFile: string, options: LintOptions, command: Command): ((loaded: LoadedPolicy) => PolicyProblem[]) | undefined {
  if (options.sidecar === undefined) {
    if (options.spiffeId !== undefined) command.error('error: --spiffe-id goes with --sidecar: it names the sidecar whose listeners are checked', { exitCode: 2 })
    return undefined
  }
  // The policy linted stands in for the configuration's own, so a configuration that leaves it to a flag loads too.
  const config = loadSidecarConfig(options.sidecar, { policy: policyFile, ...(options.spiffeId === undefined ? {} : { spiffeId: options.spiffeId }) })
  const spiffeId = config.spiffeId
  if (spiffeId === undefined) command.error(`error: --sidecar needs the sidecar's SPIFFE ID: give --spiffe-id, or set spiffeId in ${options.sidecar}`, { exitCode: 2 })
  const ports = servedPorts(config.listeners)
  return loaded => servedPortWarnings(loaded, parseSpiffeId(spiffeId).toString(), ports)
}

function checkJson (compiled: ReturnType<typeof compilePolicy>, request: PlainRequest, explanation: ReturnType<typeof explainDecision>): object {
  const { decision, nearest } = explanation
  return {
    decision: decision.allow ? 'ALLOW' : 'DENY',
    ...decision,
    location: compiled.ruleLocation(decision.rule) ?? null,
    request,
    policy: { file: compiled.source, hash: compiled.hash },
    nearest: nearest === undefined ? null : { rule: nearest.rule.name, location: compiled.ruleLocation(nearest.rule.name) ?? null, mismatches: nearest.mismatches }
  }
}
