/**
 * Which app the node proxy serves at an address, for same-device calls (proxy/listeners/same-device.ts): each served
 * app's IPv4 addresses, read inside its own namespace (loopback left out), kept fresh by the node proxy's checks —
 * every second, and whenever the apps served or Docker's network change. An address two namespaces claim is nobody's:
 * a connection to it goes out through the tunnel port, where the network decides who answers and mutual TLS who
 * that is, and the conflict is logged. Disabled (`sameDevice: tunnel`), every call goes through the tunnel port.
 */
import { networkInterfaces } from 'node:os'
import type { Logger } from 'pino'
import type { SameDeviceApp } from '../proxy'

/** An app that may be served, with the addresses of its namespace. */
export interface AddressedApp {
  readonly name: string
  /** Served now: undefined when not. */
  readonly served: SameDeviceApp | undefined
  /** Runs `read` inside the app's namespace; undefined when it cannot (the app is not adopted). */
  readonly inNamespace: <T>(read: () => T) => T | undefined
}

/** The IPv4 addresses of the current network namespace's interfaces, loopback left out. */
export function namespaceAddresses (): string[] {
  return Object.values(networkInterfaces()).flatMap(list => (list ?? []).filter(a => a.family === 'IPv4' && !a.internal).map(a => a.address))
}

export class SameDeviceApps {
  readonly #enabled: boolean
  readonly #logger: Logger
  #byAddress = new Map<string, AddressedApp>()
  /** The conflicts logged last, so each is logged when it appears, not every second. */
  #conflicts = ''

  constructor (enabled: boolean, logger: Logger) {
    this.#enabled = enabled
    this.#logger = logger
  }

  /** The app served at `host`, if it is one of this node proxy's. */
  at (host: string): SameDeviceApp | undefined {
    return this.#byAddress.get(host)?.served
  }

  /** Reads the addresses of `apps` afresh. */
  update (apps: Iterable<AddressedApp>): void {
    if (!this.#enabled) return
    const claims = new Map<string, AddressedApp[]>()
    for (const app of apps) {
      if (app.served === undefined) continue
      let addresses: string[] | undefined
      try {
        addresses = app.inNamespace(namespaceAddresses)
      } catch (err) {
        this.#logger.warn({ event: 'app_addresses_failed', app: app.name, err: (err as Error).message }, 'cannot read the app\'s addresses: its calls from other apps go through the tunnel port')
      }
      for (const address of addresses ?? []) claims.set(address, [...claims.get(address) ?? [], app])
    }
    const byAddress = new Map<string, AddressedApp>()
    const conflicts: string[] = []
    for (const [address, claimants] of claims) {
      if (claimants.length === 1) byAddress.set(address, claimants[0])
      else conflicts.push(`${address}: ${claimants.map(app => app.name).join(', ')}`)
    }
    this.#byAddress = byAddress
    const text = conflicts.sort().join('; ')
    if (text !== this.#conflicts && text !== '') this.#logger.warn({ event: 'address_conflict', conflicts }, 'apps claim the same address: calls to it go through the tunnel port, not handed over')
    this.#conflicts = text
  }
}
