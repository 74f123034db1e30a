/**
 * The app networks of a node proxy: the IPv4 networks whose addresses are apps some node proxy serves, so a
 * connection to one goes out through the tunnel port. The configured ones (`appNetworks`) stay; Docker discovery
 * replaces its own as the Docker network changes (recreated with another subnet, say), and every app's next
 * connection sees the change.
 */
import { inIpv4Network } from './ipv4-network'
import type { Ipv4Network } from './ipv4-network'

export class AppNetworks {
  readonly #configured: readonly Ipv4Network[]
  #discovered: readonly Ipv4Network[] = []

  constructor (configured: readonly Ipv4Network[]) {
    this.#configured = configured
  }

  /** Docker's subnets from now on. */
  setDiscovered (networks: readonly Ipv4Network[]): void {
    this.#discovered = networks
  }

  /** Whether `host` (an IPv4 literal) is in an app network. */
  includes (host: string): boolean {
    return [this.#configured, this.#discovered].some(networks => networks.some(network => inIpv4Network(network, host)))
  }

  /** The networks in force, as CIDR text (logs, /status). */
  get texts (): string[] {
    return [...this.#configured, ...this.#discovered].map(network => network.text)
  }
}
