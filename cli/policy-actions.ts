/**
 * What `chaperone policy lint|check|matrix` do once they run (loaded by policy-commands.ts when one runs, so the
 * policy engine, YAML and JSON Schema are not loaded for the CLI's other commands).
 */
import type { Command } from 'commander'
import { parseSpiffeId } from '../spiffe/id'
import { compilePolicy } from '../policy/engine'
import { loadPolicy } from '../policy/document'
import { explainDecision } from '../policy/explain'
import type { PlainRequest } from '../policy/explain'
import { lintPolicyFile } from '../policy/lint'
import { policyMatrix } from '../policy/matrix'
import { servedPortWarnings } from '../policy/served-ports'
import type { LoadedPolicy, PolicyProblem } from '../policy'
import { loadSidecarConfig } from '../proxy/config'
import { servedPorts } from '../proxy/served-ports'
import { print, withAdmin } from './admin-options'
import { renderCheck, renderLint, renderMatrix } from './policy-output'

export interface LintOptions { strict?: boolean, json?: boolean, sidecar?: string, spiffeId?: string }
export interface CheckOptions { from: string, to: string, port?: number, method?: string, path?: string, json?: boolean }
export interface MatrixOptions { ids?: string[], port?: number, adminSocket: string, json?: boolean }

export function lint (file: string, options: LintOptions, command: Command): void {
  const result = lintPolicyFile(file, sidecarWarnings(file, options, command))
  print(options, result, () => renderLint(result))
  process.exitCode = result.errors > 0 ? 2 : result.warnings > 0 && options.strict === true ? 1 : 0
}

export function check (file: string, options: CheckOptions, command: Command): void {
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
}

export async function matrix (file: string, options: MatrixOptions, command: Command): Promise<void> {
  const compiled = compilePolicy(loadPolicy(file))
  const ids = options.ids ?? await withAdmin(options, async client => [...new Set((await client.listEntries()).map(entry => entry.spiffe_id))].sort())
  if (ids.length === 0) command.error('error: no IDs: give --ids, or register entries with the agent first', { exitCode: 2 })
  const cells = policyMatrix(compiled, ids, options.port)
  print(options, { policy: { file, hash: compiled.hash }, port: options.port ?? null, ids, cells }, () => renderMatrix(compiled, ids, cells, options.port))
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
