/**
 * One app served by the node proxy: everything a sidecar does for its app, with the app's own identity (from the
 * Delegated Identity API), metrics labelled by the app, and listeners whose sockets were opened inside the app's
 * network namespace — so a connection accepted there is the app's, whatever address it claims. Its own
 * connections (to peers, to the app) are opened inside that namespace too, marked so the app's redirect rules let
 * them pass. Three listeners: the tunnel port (mutual TLS from other node proxies, with the tunnel header), the
 * transparent inbound port (mutual TLS from sidecars, redirected from any other port) and the transparent outbound
 * port (the app's own connections, redirected). It is also a SameDeviceApp: the connections of other apps of this
 * node proxy that call it are handed to its tunnel side inside the process (proxy/listeners/same-device.ts).
 */
import { once } from 'node:events'
import type { Server } from 'node:net'
import type { Logger } from 'pino'
import type { PolicyWatcher } from '../policy/watch'
import type { X509ContextSource } from '../spiffe/x509-context'
import { RateLimitedLog } from '../log/limited-log'
import { ConnectionTracker, inboundAtPort, notReady, PeerChains, SidecarIdentity, SidecarMetrics, serveIdentity, stopServing, transparentInboundListener, transparentOutboundListener, tunnelInboundListener } from '../proxy'
import type { Dialer, IdentityState, ListenerConfig, SameDeviceApp, SidecarConfig, SidecarServices } from '../proxy'
import type { SpiffeId } from '../spiffe/id'

/** The node proxy's settings every app shares (the per-app parts are filled in by AppProxy). */
export type SharedSettings = Omit<SidecarConfig, 'listeners' | 'httpPorts' | 'services'>

export interface NodePorts { readonly tunnel: number, readonly inbound: number, readonly outbound: number }

export interface AppSpec {
  readonly name: string
  readonly httpPorts: ReadonlySet<number>
  /** Transparent outbound: the server ID (or pattern) expected at a destination `host:port`. */
  readonly services: Readonly<Record<string, string>>
}

/** Sockets in the app's network namespace. */
export interface AppSockets {
  /** A listening TCP socket bound inside the namespace: its file descriptor, for `server.listen({ fd })`. */
  listen: (host: string, port: number) => number
  /** Connections opened from inside the namespace, marked past its redirect rules. */
  dial: Dialer
}

export interface AppProxyOptions {
  readonly app: AppSpec
  readonly sockets: AppSockets
  readonly source: X509ContextSource
  readonly policy: PolicyWatcher
  readonly settings: SharedSettings
  readonly ports: NodePorts
  /** Whether a destination is an app some node proxy serves (reached through its tunnel port). */
  readonly tunnelled: (host: string) => boolean
  /** The app this node proxy serves at a destination address, to hand connections to inside the process. */
  readonly sameDevice: (host: string) => SameDeviceApp | undefined
  /** HTTP mode: protocols a client may switch to (lowercase). */
  readonly upgrades: ReadonlySet<string>
  readonly logger: Logger
}

function listenersOf (ports: NodePorts, upgrades: ReadonlySet<string>): ListenerConfig[] {
  const common = { kind: 'transparent' as const, protocol: 'tcp' as const, target: { host: '', port: 0 }, servicePort: 0, proxyProtocol: false, upgrades }
  return [
    { ...common, name: 'tunnel', direction: 'inbound' as const, listen: { host: '0.0.0.0', port: ports.tunnel } },
    { ...common, name: 'inbound', direction: 'inbound' as const, listen: { host: '0.0.0.0', port: ports.inbound } },
    { ...common, name: 'outbound', direction: 'outbound' as const, listen: { host: '127.0.0.1', port: ports.outbound } }
  ].map(listener => Object.freeze(listener))
}

export class AppProxy implements SameDeviceApp {
  readonly services: SidecarServices
  readonly #servers: ReadonlyArray<{ readonly name: string, readonly server: Server }>
  readonly #onReload: () => void
  /** Same-device callers are served by the tunnel side, as if they had come through the tunnel port. */
  readonly serve: SameDeviceApp['serve']
  #stopped = false

  private constructor (services: SidecarServices, servers: ReadonlyArray<{ name: string, server: Server }>, onReload: () => void, tunnelSide: SameDeviceApp['serve']) {
    this.services = services
    this.#servers = servers
    this.#onReload = onReload
    this.serve = tunnelSide
  }

  /** Undefined once the app is no longer served: handOff then refuses its callers. */
  get id (): SpiffeId | undefined { return this.#stopped ? undefined : this.services.identity.current?.context.spiffeId }
  get httpPorts (): ReadonlySet<number> { return this.services.config.httpPorts }

  /** Waits for the app's first SVID, then opens its listeners in its namespace and serves them. */
  static async start (options: AppProxyOptions): Promise<AppProxy> {
    const { app, settings, ports } = options
    const logger = options.logger.child({ app: app.name })
    const identity = new SidecarIdentity(options.source, logger)
    let state: IdentityState
    try {
      state = await identity.ready(settings.readyTimeoutMs)
    } catch (err) {
      identity.close()
      throw err
    }
    const metrics = new SidecarMetrics()
    metrics.registry.setDefaultLabels({ app: app.name })
    const config: SidecarConfig = Object.freeze({ ...settings, listeners: listenersOf(ports, options.upgrades), httpPorts: app.httpPorts, services: app.services })
    const services: SidecarServices = {
      config,
      identity,
      policy: options.policy,
      metrics,
      tracker: new ConnectionTracker(),
      logger,
      limitedLog: new RateLimitedLog(logger),
      peerChains: new PeerChains(),
      dial: options.sockets.dial,
      tunnelTo: destination => options.tunnelled(destination.host) ? ports.tunnel : undefined,
      sameDevice: destination => options.sameDevice(destination.host)
    }
    const [tunnel, inbound, outbound] = config.listeners
    const tunnelSide = inboundAtPort(services, tunnel)
    const servers = [
      { name: tunnel.name, server: tunnelInboundListener(services, tunnel, state, tunnelSide) as Server },
      { name: inbound.name, server: transparentInboundListener(services, inbound, state) as Server },
      { name: outbound.name, server: transparentOutboundListener(services, outbound) as Server }
    ]
    const onReload = serveIdentity(services, servers)
    const proxy = new AppProxy(services, servers, onReload, tunnelSide.serveSameDevice)
    try {
      for (const [i, { server }] of servers.entries()) {
        const { host, port } = config.listeners[i].listen
        server.listen({ fd: options.sockets.listen(host, port) })
        await once(server, 'listening')
      }
    } catch (err) {
      await proxy.stop(0)
      throw err
    }
    options.policy.on('reload', proxy.#policyReloaded)
    logger.info({ event: 'app_served', spiffeId: state.context.spiffeId.toString(), ports }, 'app served')
    return proxy
  }

  readonly #policyReloaded = (result: { result: string }): void => { if (result.result === 'ok') this.#onReload() }

  /** What is missing before this app is served; empty when ready. */
  notReady (): string[] {
    return notReady(this.services, () => this.services.config.listeners.map((config, i) => ({ config, bound: this.#servers[i].server.listening ? { address: config.listen.host, family: 'IPv4', port: config.listen.port } : undefined })))
  }

  /** Stops accepting, drains up to `drainMs`, then closes what is left and the app's identity stream. */
  async stop (drainMs = this.services.config.drainMs): Promise<number> {
    const { services } = this
    this.#stopped = true
    services.policy.off('reload', this.#policyReloaded)
    const cut = await stopServing(services, this.#servers.map(s => s.server), drainMs)
    services.identity.close()
    return cut
  }
}
