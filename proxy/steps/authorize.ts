/**
 * The authorize step, the same inbound and outbound: decide, count, and log a denial (rate-limited per peer) or
 * what a dry-run rule would have done. Inbound the source is the verified peer and the destination ourselves;
 * outbound the source is ourselves and the destination the server's verified ID. An allowed decision costs the
 * decision and one counter: the log fields are only built for a line that may be written.
 */
import type { Decision, PolicyRequest } from '../../policy/engine'
import type { ListenerConfig } from '../config'
import type { SidecarServices } from '../services'

export function authorize (services: SidecarServices, listener: ListenerConfig, request: PolicyRequest): Decision {
  const decision = services.policy.decide(request)
  services.metrics.countDecision(listener.name, listener.direction, decision.allow, decision.rule)
  if (!decision.allow || decision.wouldBe !== undefined) report(services, listener, request, decision)
  return decision
}

function report (services: SidecarServices, listener: ListenerConfig, request: PolicyRequest, decision: Decision): void {
  const inbound = listener.direction === 'inbound'
  const peer = (inbound ? request.from : request.to).toString()
  const fields = {
    listener: listener.name,
    direction: listener.direction,
    peer,
    self: (inbound ? request.to : request.from).toString(),
    port: request.port,
    method: request.http?.method,
    path: request.http?.path,
    rule: decision.rule,
    reason: decision.reason
  }
  if (!decision.allow) services.limitedLog.warn(`deny ${listener.name} ${peer}`, { event: 'denied', ...fields }, 'connection denied by policy')
  if (decision.wouldBe !== undefined) {
    services.limitedLog.warn(`dry-run ${listener.name} ${peer}`, { event: 'dry_run', ...fields, wouldBe: decision.wouldBe }, `dry-run rule ${decision.wouldBe.rule} would ${decision.wouldBe.allow ? 'allow' : 'deny'}`)
  }
}
