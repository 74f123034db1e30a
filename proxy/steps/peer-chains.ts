/**
 * A resumed TLS session carries the peer's leaf but not the intermediates it sent in the full handshake (OpenSSL
 * keeps only the leaf in the session). Chains verified in full handshakes are remembered by their leaf, so a
 * resumed connection is verified again, in full, against the bundles in force now.
 */
const LIMIT = 4096

export class PeerChains {
  readonly #chains = new Map<string, Buffer[]>()

  /** The chain to verify for a connection: remembered by its leaf when the session was resumed and lost the rest. */
  chainFor (chain: Buffer[], resumed: boolean): Buffer[] {
    // A leaf alone needs no intermediates remembered, and has none to remember: the common case costs nothing.
    if (chain.length === 0 || (chain.length === 1 && !resumed)) return chain
    const key = chain[0].toString('base64')
    if (chain.length === 1) return this.#chains.get(key) ?? chain
    if (!this.#chains.has(key)) {
      if (this.#chains.size >= LIMIT) this.#chains.delete(this.#chains.keys().next().value as string)
      this.#chains.set(key, chain)
    }
    return chain
  }
}
