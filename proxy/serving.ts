/**
 * What a proxy does for one identity besides its listeners, shared by the sidecar and node mode's apps: the SVID
 * expiry gauge kept current; the connections of a trust domain whose bundle left closed; on each good policy reload,
 * the open connections the new policy denies closed and the rules it can never serve here logged; and stopping.
 */
import { once } from 'node:events'
import type { Server } from 'node:net'
import { isDrainable } from './http1/connections'
import type { SidecarServices } from './services'
import { logServedPortWarnings } from './served-ports'
import { closeOnTrustDomainRemoval } from './trust-domain-removal'

/** Starts the watches for `services`' listeners (by name); returns what to do after a good policy reload. */
export function serveIdentity (services: SidecarServices, servers: ReadonlyArray<{ readonly name: string, readonly server: Server }>): () => void {
  const { metrics, identity } = services
  const track = (): void => { metrics.svidExpiry.set((identity.current?.context.notAfter.getTime() ?? 0) / 1000) }
  track()
  identity.on('change', track)
  closeOnTrustDomainRemoval(services, servers)
  logServedPortWarnings(services)
  return () => {
    closeDenied(services)
    logServedPortWarnings(services)
  }
}

function closeDenied (services: SidecarServices): void {
  for (const { connection, decision } of services.tracker.reevaluate(services.policy.decide)) {
    services.metrics.closed.inc({ listener: connection.listener, reason: 'policy' })
    services.logger.warn({
      event: 'closed_by_policy',
      listener: connection.listener,
      direction: connection.direction,
      from: connection.request.from.toString(),
      to: connection.request.to.toString(),
      port: connection.request.port,
      rule: decision.rule,
      reason: decision.reason,
      policy: services.policy.policy.hash
    }, 'open connection closed: the new policy denies it')
  }
}

/**
 * Stops accepting on `listeners` (and `others`, e.g. the admin endpoint), waits up to `drainMs` for their open
 * connections, then closes the rest; returns how many were cut.
 */
export async function stopServing (services: SidecarServices, listeners: readonly Server[], drainMs: number, others: readonly Server[] = []): Promise<number> {
  const closed = [...listeners, ...others].filter(s => s.listening).map(async server => {
    server.close()
    if (isDrainable(server)) server.closeIdleConnections()
    await once(server, 'close')
  })
  const cut = await services.tracker.drain(drainMs)
  for (const server of listeners) if (isDrainable(server)) server.closeAllConnections()
  await Promise.all(closed)
  return cut
}
