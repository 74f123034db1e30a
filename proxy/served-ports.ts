/**
 * The app ports this sidecar's listeners serve, as the policy's servedPortWarnings takes them, and the
 * `policy_warning` log lines for rules that can never match here (at start and after each policy reload).
 */
import { formatProblem, servedPortWarnings } from '../policy'
import type { ServedPorts } from '../policy'
import type { ListenerConfig } from './config'
import type { SidecarServices } from './services'

/** As many as the policy watcher logs of the policy's own warnings: enough to act on, not a flood. */
const WARNINGS_LOGGED = 20

/** Per direction, the fixed listeners' service ports; `any` where a transparent listener or an HTTP proxy serves every port. */
export function servedPorts (listeners: readonly ListenerConfig[]): ServedPorts {
  const of = (direction: ListenerConfig['direction']): ServedPorts['inbound'] => {
    const side = listeners.filter(listener => listener.direction === direction)
    return side.some(listener => listener.kind !== 'fixed') ? 'any' : new Set(side.map(listener => listener.servicePort))
  }
  return { inbound: of('inbound'), outbound: of('outbound') }
}

/** Logs the rules of the policy in force that this sidecar's listeners can never serve. */
export function logServedPortWarnings (services: SidecarServices): void {
  const spiffeId = services.identity.current?.context.spiffeId.toString()
  if (spiffeId === undefined) return
  const policy = services.policy.policy
  const warnings = servedPortWarnings(policy, spiffeId, servedPorts(services.config.listeners))
  for (const warning of warnings.slice(0, WARNINGS_LOGGED)) {
    services.logger.warn({ event: 'policy_warning', file: policy.source, warning: formatProblem(warning, policy.source) }, 'policy warning')
  }
}
