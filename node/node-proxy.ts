/**
 * The node proxy process: one per device, serving every app of the configuration (and, with `docker:`, every
 * container on the app network). It installs the network guard on the app network's bridges, then keeps the apps
 * it serves equal to the apps it is given: every second it checks each app's namespace — one that appeared is
 * adopted, one that went away is let go, one made anew (a restarted container) is adopted afresh, one whose
 * adoption failed is tried again with backoff.
 *
 * With `docker:`, the apps served are the configuration's and Docker's (a configured app keeps its name: a container
 * of the same name is not served), and Docker's network follows what Docker says: its bridge is guarded before any
 * of its containers is adopted, and its subnets are app networks, reached through the tunnel port.
 */
import { once } from 'node:events'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Logger } from 'pino'
import type { Registry } from 'prom-client'
import { PolicyWatcher } from '../policy/watch'
import { DelegatedIdentityClient } from '../spiffe/delegated-identity-client'
import { AdoptedApp } from './adopted-app'
import type { AppStatus, NodeParts } from './adopted-app'
import { AppNetworks } from './app-networks'
import type { AppConfig, NodeConfig } from './config'
import { DockerDiscovery } from './docker-discovery'
import type { DockerListing } from './docker-listing'
import { Netns, netnsIdentity } from './netns'
import { NetnsSockets } from './netns-sockets'
import { installGuard, removeGuard } from './network-guard'
import { nodeAdminServer } from './node-admin'
import { ProcessHandles } from './process-handles'
import { SameDeviceApps } from './same-device-apps'

const CHECK_INTERVAL_MS = 1000
const RETRY_FIRST_MS = 1000
const RETRY_MAX_MS = 30_000

interface Served { adopted: AdoptedApp, retryAt: number, retryMs: number }

/** Two configurations of an app that can be served by one adoption. */
function sameApp (a: AppConfig, b: AppConfig): boolean {
  return JSON.stringify({ ...a, httpPorts: [...a.httpPorts] }) === JSON.stringify({ ...b, httpPorts: [...b.httpPorts] })
}

/** The identity of the app's namespace, or undefined if it is not there (or no longer the one it was pinned to). */
function identityAt (app: AppConfig): string | undefined {
  try {
    const identity = netnsIdentity(app.netns)
    return app.netnsIdentity === undefined || app.netnsIdentity === identity ? identity : undefined
  } catch {
    return undefined
  }
}

export class NodeProxy {
  readonly parts: NodeParts
  readonly #admin: Server
  readonly #policyRegistry: Registry
  readonly #served = new Map<string, Served>()
  /** Adoptions under way, by app name. */
  readonly #adopting = new Map<string, Promise<void>>()
  /**
   * Releases under way (draining), by the namespace's identity: not awaited by the checks, so one app's drain holds
   * up no other app; an app in a namespace being released waits for it, or the release's removal of the redirect
   * rules would undo the new adoption's.
   */
  readonly #releasing = new Map<string, Promise<void>>()
  /** The configuration's apps, Docker's, and what is served: both, the configuration's first. */
  #configured: readonly AppConfig[] = []
  #discovered: readonly AppConfig[] = []
  #desired: readonly AppConfig[] = []
  #docker: DockerDiscovery | undefined
  /** The bridge guarded for Docker's network. */
  #dockerBridge: string | undefined
  #timer: NodeJS.Timeout | undefined
  #checking: Promise<void> | undefined
  #stopped = false

  private constructor (parts: NodeParts, policyRegistry: Registry) {
    this.parts = parts
    this.#policyRegistry = policyRegistry
    this.#admin = nodeAdminServer({ apps: () => this.status(), registries: () => this.#registries(), policy: parts.policy })
  }

  static async start (config: NodeConfig, logger: Logger): Promise<NodeProxy> {
    for (const bridge of config.guardBridges) installGuard({ bridge, tunnelPort: config.ports.tunnel })
    const policy = new PolicyWatcher(config.policy, { logger })
    const netns = new Netns()
    const client = new DelegatedIdentityClient(config.delegatedIdentityApi)
    const { policy: policyFile, admin, logLevel, handshakeTimeoutMs, headTimeoutMs, idleTimeoutMs, maxConnections, maxConnectionsPerPeer, httpLimits, drainMs, readyTimeoutMs } = config
    const settings = Object.freeze({ workloadApi: client.address, policy: policyFile, admin, logLevel, handshakeTimeoutMs, headTimeoutMs, idleTimeoutMs, maxConnections, maxConnectionsPerPeer, httpLimits, drainMs, readyTimeoutMs })
    const appNetworks = new AppNetworks(config.appNetworks)
    const sameDevice = new SameDeviceApps(config.sameDevice === 'handoff', logger)
    const node = new NodeProxy({ config, appNetworks, netns, sockets: new NetnsSockets(netns), processes: new ProcessHandles(), client, policy, settings, sameDevice, logger }, policy.registry)
    try {
      node.#admin.listen(config.admin.port, config.admin.host)
      await once(node.#admin, 'listening')
      node.#configured = config.apps
      if (config.docker !== undefined) {
        node.#docker = new DockerDiscovery({ docker: config.docker, httpPorts: config.httpPorts, logger, found: async listing => { await node.#dockerFound(listing) } })
        await node.#docker.firstListing
      }
    } catch (err) {
      await node.stop()
      throw err
    }
    await node.#apply()
    node.#timer = setInterval(() => { void node.#check() }, CHECK_INTERVAL_MS)
    logger.info({ event: 'node_started', apps: node.#desired.length, admin: node.adminAddress, guard: [...config.guardBridges, ...node.#dockerBridge === undefined ? [] : [node.#dockerBridge]], appNetworks: appNetworks.texts }, 'node proxy running')
    return node
  }

  get adminAddress (): string {
    const address = this.#admin.address() as AddressInfo | null
    return address === null ? '' : `${address.address}:${address.port}`
  }

  /** Serve these apps (the configuration's, reloaded) and Docker's from now on; returns once checked. */
  async setApps (apps: readonly AppConfig[]): Promise<void> {
    this.#configured = apps
    await this.#apply()
  }

  /** What Docker runs: its bridge guarded first (a guard that cannot be installed throws), then its apps served. */
  async #dockerFound (listing: DockerListing): Promise<void> {
    const { config, logger, appNetworks } = this.parts
    const bridge = listing.network?.bridge
    if (bridge !== undefined && bridge !== this.#dockerBridge) {
      installGuard({ bridge, tunnelPort: config.ports.tunnel })
      logger.info({ event: 'guard_installed', bridge, network: listing.network?.name }, 'the app network\'s bridge is guarded')
      const old = this.#dockerBridge
      this.#dockerBridge = bridge
      // The network was made anew (a new bridge): the old bridge is gone, and its guard with nothing to guard.
      if (old !== undefined && !config.guardBridges.includes(old)) removeGuard({ bridge: old, tunnelPort: config.ports.tunnel })
    }
    appNetworks.setDiscovered(listing.network?.subnets ?? [])
    this.#discovered = listing.apps
    await this.#apply()
  }

  /** Serves the configuration's apps and Docker's, the configuration's first when both have an app of one name. */
  async #apply (): Promise<void> {
    const names = new Set(this.#configured.map(app => app.name))
    const shadowed = this.#discovered.filter(app => names.has(app.name)).map(app => app.name)
    if (shadowed.length > 0) this.parts.logger.warn({ event: 'docker_app_shadowed', apps: shadowed }, 'containers named like configured apps are not served: the configured apps are')
    this.#desired = [...this.#configured, ...this.#discovered.filter(app => !names.has(app.name))]
    await this.#check()
  }

  /** Waits for the adoptions under way (tests, and `start` when asked to wait). */
  async settled (): Promise<void> {
    while (this.#adopting.size > 0) await Promise.all(this.#adopting.values())
  }

  status (): AppStatus[] {
    return this.#desired.map(app => this.#served.get(app.name)?.adopted.status() ?? {
      name: app.name,
      netns: app.netns,
      state: 'adopting',
      missing: [this.#adopting.has(app.name) ? 'being adopted: waiting for its first SVID' : `its namespace ${app.netns} is not there (yet)`]
    })
  }

  #registries (): Registry[] {
    const apps = [...this.#served.values()].flatMap(({ adopted }) => adopted.proxy === undefined ? [] : [adopted.proxy.services.metrics.registry])
    return [this.#policyRegistry, ...apps]
  }

  /** One pass at a time; a pass asked for while one runs waits for it, then runs. */
  async #check (): Promise<void> {
    while (this.#checking !== undefined) await this.#checking
    if (this.#stopped) return
    this.#checking = this.#reconcile().finally(() => { this.#checking = undefined })
    await this.#checking
  }

  async #reconcile (): Promise<void> {
    const wanted = new Map(this.#desired.map(app => [app.name, app]))
    const { drainMs } = this.parts.config
    for (const [name, served] of this.#served) {
      const app = wanted.get(name)
      if (app === undefined || !sameApp(app, served.adopted.app)) {
        this.#served.delete(name)
        this.parts.logger.info({ event: 'app_released', app: name }, app === undefined ? 'the app left the configuration' : 'the app\'s configuration changed')
        // An app whose namespace is gone (a container that died) has nothing left to drain.
        this.#release(served.adopted, identityAt(served.adopted.app) === undefined ? 0 : drainMs)
      }
    }
    for (const app of wanted.values()) await this.#refresh(app)
    this.#readAddresses()
  }

  #readAddresses (): void {
    this.parts.sameDevice.update([...this.#served.values()].map(served => served.adopted))
  }

  /** Lets `adopted` go (its rules removed) in the background, draining up to `drainMs`. */
  #release (adopted: AdoptedApp, drainMs: number): void {
    const key = adopted.netnsIdentity ?? adopted.app.netns
    const before = this.#releasing.get(key) ?? Promise.resolve()
    const releasing = before.then(async () => { await adopted.release(drainMs, true) }).catch((err: Error) => {
      this.parts.logger.warn({ event: 'app_cleanup_failed', app: adopted.app.name, err: err.message }, 'cannot let the app go cleanly')
    }).finally(() => {
      if (this.#releasing.get(key) === releasing) this.#releasing.delete(key)
    })
    this.#releasing.set(key, releasing)
  }

  async #refresh (app: AppConfig): Promise<void> {
    if (this.#adopting.has(app.name)) return
    const served = this.#served.get(app.name)
    const identity = identityAt(app)
    if (identity !== undefined && this.#releasing.has(identity)) return // adopted at the first check after the release
    const same = served?.adopted.netnsIdentity === identity
    if (served !== undefined && same && (served.adopted.state === 'served' || Date.now() < served.retryAt)) return
    if (served !== undefined) {
      this.#served.delete(app.name)
      await served.adopted.release(0, false)
    }
    if (identity === undefined) return // not there (yet): checked again next time
    const retryMs = served === undefined || !same ? RETRY_FIRST_MS : Math.min(served.retryMs * 2, RETRY_MAX_MS)
    // Not awaited: each adoption waits for its app's first SVID, and one app without an entry must not hold up
    // the others, or the next check.
    const adopting = AdoptedApp.adopt(app, this.parts, () => { void this.#check() }).then(async adopted => {
      this.#adopting.delete(app.name)
      if (this.#stopped || !this.#desired.some(wanted => sameApp(wanted, app))) await adopted.release(0, !this.#stopped)
      else {
        this.#served.set(app.name, { adopted, retryAt: Date.now() + retryMs, retryMs })
        this.#readAddresses()
      }
    })
    this.#adopting.set(app.name, adopting)
  }

  /** Stops serving every app (draining each up to drainMs); their redirect rules stay, so nothing passes in plaintext. */
  async stop (): Promise<void> {
    this.#stopped = true
    this.#docker?.close()
    clearInterval(this.#timer)
    while (this.#checking !== undefined) await this.#checking
    await Promise.all(this.#adopting.values())
    await Promise.all([...this.#served.values()].map(async ({ adopted }) => { await adopted.release(this.parts.config.drainMs, false) }))
    await Promise.all(this.#releasing.values())
    this.#served.clear()
    if (this.#admin.listening) {
      this.#admin.close()
      await once(this.#admin, 'close')
    }
    this.parts.client.close()
    this.parts.policy.close()
    this.parts.processes.close()
    this.parts.netns.close()
  }
}
