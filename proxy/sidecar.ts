/**
 * The sidecar process: its identity from the Workload API, the policy (hot-reloaded), the listeners and the admin
 * endpoints. A policy change closes the open connections the new policy denies and leaves the rest; an SVID or
 * bundle change applies to new handshakes only, but a trust domain whose bundle leaves the set takes the
 * connections with its peers along. Rules the listeners can never serve are logged at start and on reload.
 * `stop()` stops accepting, drains, then closes what is left.
 */
import { once } from 'node:events'
import type { Server as HttpServer } from 'node:http'
import type { AddressInfo, Server } from 'node:net'
import type { Logger } from 'pino'
import { PolicyWatcher } from '../policy/watch'
import type { ListenerConfig, SidecarConfig } from './config'
import { ConnectionTracker } from './tracker'
import { RateLimitedLog } from '../log/limited-log'
import { SidecarIdentity, workloadApiSource } from './identity'
import type { IdentityState } from './identity'
import { SidecarMetrics } from './metrics'
import { PeerChains } from './steps/peer-chains'
import type { SidecarServices } from './services'
import { dialDirect } from './dial'
import { adminServer } from './admin'
import type { ListenerStatus } from './admin'
import { inboundTcpListener } from './listeners/inbound-tcp'
import { inboundHttpListener } from './listeners/inbound-http'
import { outboundTcpListener } from './listeners/outbound-tcp'
import { outboundHttpListener } from './listeners/outbound-http'
import { explicitProxyListener } from './listeners/explicit-proxy'
import { transparentInboundListener, transparentOutboundListener } from './listeners/transparent'
import { serveIdentity, stopServing } from './serving'

interface BoundListener extends ListenerStatus { readonly server: Server, bound: AddressInfo | undefined }

export class Sidecar {
  readonly services: SidecarServices
  readonly #listeners: BoundListener[]
  readonly #admin: HttpServer
  #adminAddress: AddressInfo | undefined

  private constructor (services: SidecarServices, listeners: BoundListener[], admin: HttpServer) {
    this.services = services
    this.#listeners = listeners
    this.#admin = admin
  }

  /** Starts once the first SVID is in (config.readyTimeoutMs at most; the error says what to check). */
  static async start (config: SidecarConfig, logger: Logger): Promise<Sidecar> {
    const metrics = new SidecarMetrics()
    const policy = new PolicyWatcher(config.policy, { logger, registry: metrics.registry })
    const identity = new SidecarIdentity(workloadApiSource(config.workloadApi, config.spiffeId, logger), logger)
    let state
    try {
      state = await identity.ready(config.readyTimeoutMs)
    } catch (err) {
      identity.close()
      policy.close()
      throw err
    }
    const services: SidecarServices = { config, identity, policy, metrics, tracker: new ConnectionTracker(), logger, limitedLog: new RateLimitedLog(logger), peerChains: new PeerChains(), dial: dialDirect }
    const listeners = config.listeners.map((listener): BoundListener => ({ config: listener, server: createListener(services, listener, state), bound: undefined }))
    const reloaded = serveIdentity(services, listeners.map(l => ({ name: l.config.name, server: l.server })))
    policy.on('reload', result => { if (result.result === 'ok') reloaded() })
    const sidecar = new Sidecar(services, listeners, adminServer(services, () => listeners))
    await sidecar.#listen()
    logger.info({ event: 'sidecar_started', spiffeId: state.context.spiffeId.toString(), policy: policy.policy.hash, listeners: sidecar.addresses() }, 'sidecar running')
    return sidecar
  }

  /** Where each listener (and the admin endpoint, as `admin`) is bound: ports given as 0 are resolved. */
  addresses (): Record<string, string> {
    const entries = this.#listeners.map(l => [l.config.name, l.bound === undefined ? '' : `${l.bound.address}:${l.bound.port}`])
    if (this.#adminAddress !== undefined) entries.push(['admin', `${this.#adminAddress.address}:${this.#adminAddress.port}`])
    return Object.fromEntries(entries) as Record<string, string>
  }

  async #listen (): Promise<void> {
    try {
      for (const listener of this.#listeners) {
        listener.server.listen(listener.config.listen.port, listener.config.listen.host)
        await once(listener.server, 'listening')
        listener.bound = listener.server.address() as AddressInfo
      }
      const { host, port } = this.services.config.admin
      this.#admin.listen(port, host)
      await once(this.#admin, 'listening')
      this.#adminAddress = this.#admin.address() as AddressInfo
    } catch (err) {
      await this.stop(0)
      throw err
    }
  }

  /** Stops accepting, waits up to `drainMs` (default: the configuration's) for open connections, then closes the rest. */
  async stop (drainMs = this.services.config.drainMs): Promise<void> {
    const { services } = this
    services.logger.info({ event: 'draining', activeConnections: services.tracker.size, drainMs }, 'stopping: no new connections, draining')
    const cut = await stopServing(services, this.#listeners.map(l => l.server), drainMs, [this.#admin])
    services.identity.close()
    services.policy.close()
    services.logger.info({ event: 'stopped', cutConnections: cut }, 'sidecar stopped')
  }
}

function createListener (services: SidecarServices, listener: ListenerConfig, state: IdentityState): Server {
  const inbound = listener.direction === 'inbound'
  if (listener.kind === 'transparent') return inbound ? transparentInboundListener(services, listener, state) : transparentOutboundListener(services, listener)
  if (listener.kind === 'http-proxy') return explicitProxyListener(services, listener)
  if (inbound) return (listener.protocol === 'http' ? inboundHttpListener : inboundTcpListener)(services, listener, state)
  return (listener.protocol === 'http' ? outboundHttpListener : outboundTcpListener)(services, listener)
}
