/**
 * A connection that switched protocols (a WebSocket after `101`, or the explicit proxy's CONNECT): from here on
 * bytes are relayed both ways as they come, with backpressure, and never read as HTTP again (invariant 8).
 */
import type { Socket } from 'node:net'
import type { Upstream, UpstreamOwner } from './upstream-pool'

export class Relay implements UpstreamOwner {
  readonly #client: Socket
  readonly #upstream: Socket

  constructor (client: Socket, upstream: Upstream) {
    this.#client = client
    this.#upstream = upstream.socket
    upstream.owner = this
  }

  fromClient (chunk: Buffer): void {
    if (!this.#upstream.write(chunk)) this.#client.pause()
  }

  clientDrained (): void {
    this.#upstream.resume()
  }

  clientClosed (): void {
    this.#upstream.destroy()
  }

  onUpstreamData (chunk: Buffer): void {
    if (!this.#client.write(chunk)) this.#upstream.pause()
  }

  onUpstreamDrain (): void {
    this.#client.resume()
  }

  onUpstreamClose (): void {
    this.#client.destroy()
  }
}
