/**
 * Which app the node proxy serves at an address, for same-device calls (proxy/listeners/same-device.ts): each served
 * app's IPv4 addresses, read inside its own namespace (loopback left out), kept fresh by the node proxy's checks —
 * every second, and whenever the apps served or Docker's network change. An address two namespaces claim is nobody's:
 * a connection to it goes out through the tunnel port, where the network decides who answers and mutual TLS who
 * that is, and the conflict is logged. Only addresses on a network attached to the device count (a subnet of one of
 * the node proxy's own interfaces, such as the app bridge's): an app that gave itself the address of an app on
 * another device (it may, with NET_ADMIN in its own namespace) does not get that app's calls handed to it; they go
 * out, to wherever the network routes them. Disabled (`sameDevice: tunnel`), every call goes through the tunnel port.
 */
import { networkInterfaces } from 'node:os'
import type { NetworkInterfaceInfo } from 'node:os'
import type { Logger } from 'pino'
import type { SameDeviceApp } from '../proxy'
import { inIpv4Network, networkOf } from './ipv4-network'
import type { Ipv4Network } from './ipv4-network'

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
  return ipv4Interfaces().map(a => a.address)
}

/** The networks the current namespace's interfaces are on (the node proxy's own: the device's), loopback left out. */
export function attachedNetworks (): Ipv4Network[] {
  return ipv4Interfaces().map(a => networkOf(a.address, a.netmask))
}

function ipv4Interfaces (): NetworkInterfaceInfo[] {
  return Object.values(networkInterfaces()).flatMap(list => (list ?? []).filter(a => a.family === 'IPv4' && !a.internal))
}

export class SameDeviceApps {
  readonly #enabled: boolean
  readonly #logger: Logger
  #byAddress = new Map<string, AddressedApp>()
  /** The conflicts logged last, so each is logged when it appears, not every second. */
  #conflicts = ''

  readonly #deviceNetworks: () => readonly Ipv4Network[]

  /** `deviceNetworks`: the networks attached to the device, read in the node proxy's own namespace. */
  constructor (enabled: boolean, logger: Logger, deviceNetworks: () => readonly Ipv4Network[] = attachedNetworks) {
    this.#enabled = enabled
    this.#logger = logger
    this.#deviceNetworks = deviceNetworks
  }

  /** The app served at `host`, if it is one of this node proxy's. */
  at (host: string): SameDeviceApp | undefined {
    return this.#byAddress.get(host)?.served
  }

  /** Reads the addresses of `apps` afresh. */
  update (apps: Iterable<AddressedApp>): void {
    if (!this.#enabled) return
    const claims = new Map<string, AddressedApp[]>()
    const networks = this.#deviceNetworks()
    const onDevice = (address: string): boolean => networks.some(network => inIpv4Network(network, address))
    for (const app of apps) {
      if (app.served === undefined) continue
      let addresses: string[] | undefined
      try {
        addresses = app.inNamespace(namespaceAddresses)
      } catch (err) {
        this.#logger.warn({ event: 'app_addresses_failed', app: app.name, err: (err as Error).message }, 'cannot read the app\'s addresses: its calls from other apps go through the tunnel port')
      }
      for (const address of (addresses ?? []).filter(onDevice)) claims.set(address, [...claims.get(address) ?? [], app])
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
