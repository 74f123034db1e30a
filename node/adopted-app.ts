/**
 * Adopting one app: its namespace opened (and held, so its identity cannot change under us), the redirect rules
 * installed in it — before anything listens, so in between its connections are refused, never plaintext — its
 * workload named to the agent (a process in the namespace, held by a pidfd against PID reuse, or the configured
 * selectors), then served (AppProxy). Adoption never throws: a failure is the app's state, with the reason, and the
 * node proxy tries again. Letting an app go (it left the configuration) removes its rules; a node proxy that stops
 * leaves them, so that while it is away the app's connections lead nowhere.
 */
import type { Logger } from 'pino'
import type { PolicyWatcher } from '../policy/watch'
import { cleanupRedirect, iptablesIn, installRedirect } from '../proxy'
import { DelegatedX509Source } from '../spiffe/delegated-x509-source'
import type { DelegatedIdentityClient } from '../spiffe/delegated-identity-client'
import type { DelegatedWorkload } from '../spiffe/delegated-workload'
import { AppProxy } from './app-proxy'
import type { SharedSettings } from './app-proxy'
import type { AppConfig, NodeConfig } from './config'
import type { AppNetworks } from './app-networks'
import type { Netns, NetnsHandle } from './netns'
import type { NetnsSockets } from './netns-sockets'
import type { ProcessHandle, ProcessHandles } from './process-handles'
import type { AddressedApp, SameDeviceApps } from './same-device-apps'

/** What every app's adoption shares: the node's parts. */
export interface NodeParts {
  readonly config: NodeConfig
  /** The app networks: the configured ones and those Docker discovery found. */
  readonly appNetworks: AppNetworks
  readonly netns: Netns
  readonly sockets: NetnsSockets
  readonly processes: ProcessHandles
  readonly client: DelegatedIdentityClient
  readonly policy: PolicyWatcher
  /** The proxy settings every app shares. */
  readonly settings: SharedSettings
  /** The apps this node proxy serves, by address: same-device calls are handed to them. */
  readonly sameDevice: SameDeviceApps
  readonly logger: Logger
}

export type AppState = 'adopting' | 'served' | 'failed' | 'released'

export interface AppStatus {
  readonly name: string
  readonly netns: string
  readonly state: AppState
  readonly spiffeId?: string
  readonly pid?: number
  /** What is missing before the app is served; empty when it is. */
  readonly missing: readonly string[]
}

export class AdoptedApp implements AddressedApp {
  readonly app: AppConfig
  readonly #parts: NodeParts
  readonly #logger: Logger
  #state: AppState = 'adopting'
  #problem: string | undefined
  #handle: NetnsHandle | undefined
  #process: ProcessHandle | undefined
  #proxy: AppProxy | undefined
  /** Called once when the app must be adopted again: its process exited, or its identity was withdrawn. */
  #onLost: (why: string) => void

  private constructor (app: AppConfig, parts: NodeParts, onLost: (why: string) => void) {
    this.app = app
    this.#parts = parts
    this.#logger = parts.logger.child({ app: app.name })
    this.#onLost = onLost
  }

  /** The namespace identity adopted (device and inode), or undefined before it was opened. */
  get netnsIdentity (): string | undefined { return this.#handle?.identity }
  get state (): AppState { return this.#state }
  get proxy (): AppProxy | undefined { return this.#proxy }
  get name (): string { return this.app.name }
  get served (): AppProxy | undefined { return this.#state === 'served' ? this.#proxy : undefined }

  inNamespace<T> (read: () => T): T | undefined {
    const handle = this.#handle
    return handle === undefined || handle.closed ? undefined : this.#parts.netns.within(handle, read)
  }

  static async adopt (app: AppConfig, parts: NodeParts, onLost: (why: string) => void): Promise<AdoptedApp> {
    const adopted = new AdoptedApp(app, parts, onLost)
    try {
      await adopted.#adopt()
      adopted.#state = 'served'
    } catch (err) {
      adopted.#state = 'failed'
      adopted.#problem = (err as Error).message
      adopted.#logger.warn({ event: 'app_adoption_failed', netns: app.netns, err: adopted.#problem }, 'cannot serve the app yet; trying again')
      await adopted.#close()
    }
    return adopted
  }

  async #adopt (): Promise<void> {
    const { config, netns, sockets, processes, client, policy } = this.#parts
    const { app } = this
    const handle = this.#handle = netns.open(app.netns)
    if (app.netnsIdentity !== undefined && handle.identity !== app.netnsIdentity) {
      throw new Error(`${app.netns} is no longer the namespace discovered: its process has exited (the PID may name another now)`)
    }
    // nsenter through our own descriptor: the namespace we hold, even if the path now names another.
    const inNamespace = `/proc/${process.pid}/fd/${handle.fd}`
    installRedirect({
      exempt: { mark: config.mark },
      tunnelPort: config.ports.tunnel,
      inboundPort: config.ports.inbound,
      outboundPort: config.ports.outbound,
      excludeInboundPorts: app.excludeInboundPorts,
      excludeOutboundPorts: app.excludeOutboundPorts
    }, iptablesIn(inNamespace))
    let workload: DelegatedWorkload
    if (app.selectors !== undefined) workload = { selectors: app.selectors }
    else {
      const held = this.#process = app.pid === undefined ? processes.openIn(handle.identity) : processes.open(app.pid, handle.identity)
      if (held === undefined) throw new Error(`no process runs in ${app.netns} to attest: start the app, or give the app selectors`)
      workload = { pid: held.pid }
      void held.ended.then(end => { if (end === 'exited') this.#lost(`its process ${held.pid} exited`) })
    }
    const source = new DelegatedX509Source({
      client,
      workload,
      ...(app.spiffeId === undefined ? {} : { pick: svids => svids.find(svid => svid.spiffeId === app.spiffeId) }),
      onError: err => { this.#logger.warn({ event: 'delegated_identity_error', err: err.message }, 'Delegated Identity API: keeping the last good SVID') }
    })
    source.once('withdrawn', err => { this.#lost(`its identity was withdrawn: ${err.message}`) })
    this.#proxy = await AppProxy.start({
      app: { name: app.name, httpPorts: app.httpPorts, services: config.services },
      sockets: {
        listen: (host, port) => sockets.listen(handle, { host, port }).fd,
        dial: target => sockets.connect(handle, { host: target.host, port: target.port, mark: config.mark, noDelay: true })
      },
      source,
      policy,
      settings: this.#parts.settings,
      ports: config.ports,
      tunnelled: host => this.#parts.appNetworks.includes(host),
      sameDevice: host => this.#parts.sameDevice.at(host),
      upgrades: config.upgrades,
      logger: this.#parts.logger
    })
  }

  #lost (why: string): void {
    if (this.#state !== 'served') return
    this.#state = 'failed'
    this.#problem = why
    this.#logger.warn({ event: 'app_lost', err: why }, 'the app must be adopted again')
    this.#onLost(why)
  }

  status (): AppStatus {
    const spiffeId = this.#proxy?.services.identity.current?.context.spiffeId.toString()
    const missing = this.#state === 'served' ? this.#proxy?.notReady() ?? [] : [this.#problem ?? this.#state]
    return {
      name: this.app.name,
      netns: this.app.netns,
      state: this.#state,
      ...(spiffeId === undefined ? {} : { spiffeId }),
      ...(this.#process === undefined ? {} : { pid: this.#process.pid }),
      missing
    }
  }

  /** Stops serving (draining up to `drainMs`); `letGo`: the app left the configuration, so its rules go too. */
  async release (drainMs: number, letGo: boolean): Promise<void> {
    this.#state = 'released'
    await this.#proxy?.stop(drainMs)
    this.#proxy = undefined
    if (letGo && this.#handle !== undefined && !this.#handle.closed) {
      try {
        cleanupRedirect(iptablesIn(`/proc/${process.pid}/fd/${this.#handle.fd}`))
      } catch (err) {
        this.#logger.warn({ event: 'app_cleanup_failed', err: (err as Error).message }, 'cannot remove the app\'s redirect rules')
      }
    }
    await this.#close()
  }

  async #close (): Promise<void> {
    await this.#proxy?.stop(0)
    this.#proxy = undefined
    this.#process?.close()
    this.#handle?.close()
  }
}
