/**
 * Idle keep-alive connections to upstreams (the app inbound, the peer's sidecar outbound), by destination key,
 * taken newest first. Each socket gets its listeners once, when adopted, and they pass its events to whichever
 * exchange owns it at the time: no listener is added or removed per request. A socket that says anything while
 * idle, or closes, leaves the pool. A connection made under credentials that have since expired — the sidecar's
 * own SVID or the server's certificate — is closed, not reused: its TLS session vouches for identities no longer
 * valid. Connections in use are known too, so those with servers of a trust domain no longer trusted can be closed.
 */
import type { Socket } from 'node:net'
import type { SpiffeId } from '../../spiffe/id'

/** The exchange using an upstream connection. */
export interface UpstreamOwner {
  onUpstreamData: (chunk: Buffer) => void
  onUpstreamDrain: () => void
  onUpstreamClose: () => void
}

export interface Upstream {
  readonly socket: Socket
  readonly key: string
  /** The server's verified SPIFFE ID (outbound); undefined for the app's plain connection (inbound). */
  readonly serverId: SpiffeId | undefined
  /** It served an exchange before: the server may have closed it meanwhile, so a request that got no answer on it may be sent again. */
  reused: boolean
  owner: UpstreamOwner | undefined
  /** Why the connection failed, when it did. */
  error: Error | undefined
  /** A shorter idle timeout while pooled, from the server's Keep-Alive hint. */
  idleMs: number | undefined
  /** When the credentials it was made under expire (ms since the epoch; Infinity for a plain connection). */
  readonly expiresAt: number
}

/** Idle connections kept per destination; more are closed when released. */
const IDLE_PER_KEY = 256
const KEEP_ALIVE_MARGIN_MS = 1000

export class UpstreamPool {
  readonly #idle = new Map<string, Upstream[]>()
  /** Idle and in use. */
  readonly #all = new Set<Upstream>()
  readonly #idleTimeoutMs: number
  readonly #onError: (err: Error, key: string) => void

  constructor (idleTimeoutMs: number, onError: (err: Error, key: string) => void) {
    this.#idleTimeoutMs = idleTimeoutMs
    this.#onError = onError
  }

  /** An idle connection to `key`, now owned by the caller, if there is one. */
  take (key: string): Upstream | undefined {
    const idle = this.#idle.get(key)
    let upstream = idle?.pop()
    while (upstream !== undefined && Date.now() > upstream.expiresAt) { // NotAfter itself is still valid (RFC 5280)
      upstream.socket.destroy()
      upstream = idle?.pop()
    }
    if (idle?.length === 0) this.#idle.delete(key)
    upstream?.socket.ref()
    if (upstream?.idleMs !== undefined) {
      upstream.idleMs = undefined
      upstream.socket.setTimeout(this.#idleTimeoutMs) // in use again: a slow answer is not idleness
    }
    return upstream
  }

  /** Wraps a new connection (not yet in the pool; the caller owns it). */
  adopt (socket: Socket, key: string, serverId: SpiffeId | undefined, expiresAt = Infinity): Upstream {
    const upstream: Upstream = { socket, key, serverId, reused: false, owner: undefined, error: undefined, idleMs: undefined, expiresAt }
    this.#all.add(upstream)
    socket.setNoDelay(true)
    socket.setTimeout(this.#idleTimeoutMs, () => { socket.destroy() })
    socket.on('data', (chunk: Buffer) => {
      if (upstream.owner === undefined) socket.destroy() // an idle connection has nothing to say
      else upstream.owner.onUpstreamData(chunk)
    })
    socket.on('drain', () => { upstream.owner?.onUpstreamDrain() })
    socket.on('error', (err: Error) => {
      upstream.error = err
      if (upstream.owner !== undefined) this.#onError(err, key) // an idle connection's reset is no news
      socket.destroy()
    })
    socket.on('close', () => {
      this.#all.delete(upstream)
      this.#forget(upstream)
      const owner = upstream.owner
      upstream.owner = undefined
      owner?.onUpstreamClose()
    })
    return upstream
  }

  /**
   * Back to the pool after a complete exchange, or closed when it cannot serve another. A server that said how
   * long it keeps idle connections (`keepAliveMs`) is left a second of margin, as Node's own agent does: a request
   * sent just as the server closes would be lost on the way.
   */
  release (upstream: Upstream, reusable: boolean, keepAliveMs?: number): void {
    upstream.owner = undefined
    const idle = this.#idle.get(upstream.key) ?? []
    if (!reusable || upstream.socket.destroyed || idle.length >= IDLE_PER_KEY || (keepAliveMs !== undefined && keepAliveMs <= KEEP_ALIVE_MARGIN_MS)) {
      upstream.socket.destroy()
      return
    }
    if (keepAliveMs !== undefined && keepAliveMs - KEEP_ALIVE_MARGIN_MS < this.#idleTimeoutMs) {
      upstream.idleMs = keepAliveMs - KEEP_ALIVE_MARGIN_MS
      upstream.socket.setTimeout(upstream.idleMs)
    }
    upstream.reused = true
    upstream.socket.resume()
    upstream.socket.unref() // an idle pooled connection does not keep a stopping sidecar alive
    idle.push(upstream)
    this.#idle.set(upstream.key, idle)
  }

  /** Closes every idle connection (the sidecar is stopping). */
  closeIdle (): void {
    for (const idle of [...this.#idle.values()]) for (const upstream of [...idle]) upstream.socket.destroy()
  }

  /** Closes the connections, idle or in use, whose server `close` picks; returns how many. */
  closeWhere (close: (serverId: SpiffeId) => boolean): number {
    let closed = 0
    for (const upstream of this.#all) {
      if (upstream.socket.destroyed || upstream.serverId === undefined || !close(upstream.serverId)) continue
      upstream.socket.destroy()
      closed++
    }
    return closed
  }

  #forget (upstream: Upstream): void {
    const idle = this.#idle.get(upstream.key)
    const at = idle?.indexOf(upstream) ?? -1
    if (idle === undefined || at === -1) return
    idle.splice(at, 1)
    if (idle.length === 0) this.#idle.delete(upstream.key)
  }
}
