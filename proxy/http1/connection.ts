/**
 * One client connection in HTTP mode, served by the sidecar's own HTTP/1.1 forwarder: read a request head, let the
 * listener route it (decide, pick an upstream connection), send the head as rewritten and the body as it came,
 * then pass the response back and hand the upstream connection to the pool. One request at a time per connection:
 * pipelined requests wait in the buffer until the response before them is complete, so a refusal is always
 * answered in order. Bodies are never parsed or copied, only delimited; a `101 Switching Protocols` turns the pair
 * into a tunnel.
 */
import { STATUS_CODES } from 'node:http'
import { performance } from 'node:perf_hooks'
import type { Socket } from 'node:net'
import type { PolicyRequest } from '../../policy/engine'
import { BodyProblem, BodyReader } from './body'
import { MAX_HEAD_BYTES, parseRequestHead, parseResponseHead, serializeHead } from './head'
import type { RequestHead, ResponseHead } from './head'
import type { Upstream, UpstreamOwner } from './upstream-pool'

/** A routed request: the connection to send it on and the head to send. */
export interface Forward {
  readonly upstream: Upstream
  readonly head: string
  /** What the policy allowed, for a connection that turns into a tunnel (tracked for policy reloads). */
  readonly request: PolicyRequest
  /** A new connection to the same destination, to send the request again when a reused one closed unanswered. */
  readonly reconnect: (done: (upstream: Upstream | Error) => void) => void
}

/** A request answered by the sidecar itself (denied, malformed, not routable). */
export interface Refusal { readonly status: number, readonly body: object }

export interface HttpConnectionHooks {
  readonly route: (head: RequestHead, client: Socket, done: (result: Forward | Refusal) => void) => void
  /** `keepAliveMs`: how long the server said it keeps the connection when idle. */
  readonly release: (upstream: Upstream, reusable: boolean, keepAliveMs?: number) => void
  /** Each response's status and the request's duration in ms. */
  readonly observe: (status: number, ms: number) => void
  readonly tunnel: (request: PolicyRequest, client: Socket, upstream: Socket) => void
  readonly idleTimeoutMs: number
}

type Phase = 'head' | 'routing' | 'exchange' | 'tunnel' | 'closed'

const EMPTY = Buffer.alloc(0)

export class HttpConnection implements UpstreamOwner {
  readonly #client: Socket
  readonly #hooks: HttpConnectionHooks
  #phase: Phase = 'head'
  /** Client bytes not handled yet: a partial head, or pipelined requests waiting their turn. */
  #pending: Buffer = EMPTY
  #request: RequestHead | undefined
  #forward: Forward | undefined
  #upstream: Upstream | undefined
  #requestBody: BodyReader | undefined
  #responseBuffer: Buffer = EMPTY
  #response: ResponseHead | undefined
  #responseBody: BodyReader | undefined
  #answered = false
  /** The upstream connection cannot serve another exchange (it said it closes, or said too much). */
  #spoiled = false
  #closeAfter = false
  #started = 0
  /** Stop after the current exchange (the sidecar is draining). */
  draining = false

  constructor (client: Socket, hooks: HttpConnectionHooks) {
    this.#client = client
    this.#hooks = hooks
    client.setNoDelay(true)
    client.setTimeout(hooks.idleTimeoutMs, () => { client.destroy() })
    client.on('data', (chunk: Buffer) => { this.#onClientData(chunk) })
    client.on('drain', () => { this.#upstream?.socket.resume() })
    client.on('error', () => { client.destroy() })
    client.on('close', () => { this.#onClientClose() })
  }

  /** Waiting for a request with nothing buffered: safe to close. */
  get idle (): boolean {
    return this.#phase === 'head' && this.#pending.length === 0
  }

  destroy (): void {
    this.#client.destroy()
  }

  #onClientData (chunk: Buffer): void {
    if (this.#phase === 'closed') return
    if (this.#phase === 'tunnel') {
      this.#write(this.#upstream?.socket, chunk, this.#client)
    } else if (this.#phase === 'exchange' && this.#requestBody !== undefined && !this.#requestBody.done) {
      this.#sendBody(chunk)
    } else {
      this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk])
      if (this.#phase === 'head') this.#readHead()
      // Pipelined requests wait here while one is served; a client that sends far ahead is read no further.
      else if (this.#pending.length > MAX_HEAD_BYTES) this.#client.pause()
    }
  }

  #readHead (): void {
    const head = parseRequestHead(this.#pending)
    if (head === undefined) return
    if ('problem' in head) {
      this.#refuse({ status: head.status, body: { error: head.problem } }, true)
      return
    }
    this.#phase = 'routing'
    this.#request = head
    this.#started = performance.now()
    this.#hooks.route(head, this.#client, result => { this.#routed(head, result) })
  }

  #routed (head: RequestHead, result: Forward | Refusal): void {
    if (this.#phase !== 'routing') { // the client left meanwhile
      if ('upstream' in result) this.#hooks.release(result.upstream, true)
      return
    }
    this.#pending = this.#pending.subarray(head.size)
    if (!('upstream' in result)) {
      // A refused request's body is not read, nor is a refused upgrade's next protocol: the connection closes after them.
      this.#refuse(result, head.close || head.upgrade || head.framing.kind !== 'none')
      return
    }
    this.#phase = 'exchange'
    this.#forward = result
    this.#closeAfter = head.close || this.draining
    this.#requestBody = new BodyReader(head.framing)
    this.#send(result.upstream)
  }

  /** Sends the head (and what is buffered of the body) on `upstream`, which this exchange now owns. */
  #send (upstream: Upstream): void {
    this.#upstream = upstream
    upstream.owner = this
    const body = this.#pending
    this.#pending = EMPTY
    // A Buffer, not the string: a string write to a TLS socket took measurably more CPU in Node 20.
    const head = Buffer.from((this.#forward as Forward).head, 'latin1')
    if (body.length === 0) {
      upstream.socket.write(head)
    } else {
      upstream.socket.cork() // the head and the body that came with it: one write, one TLS record
      upstream.socket.write(head)
      this.#sendBody(body)
      upstream.socket.uncork()
    }
    if (this.#requestBody?.done === false && this.#client.isPaused()) this.#client.resume()
  }

  #sendBody (chunk: Buffer): void {
    let taken
    try {
      taken = (this.#requestBody as BodyReader).consume(chunk, 0)
    } catch (err) {
      if (!(err instanceof BodyProblem)) throw err
      this.#fail(400, err.message)
      return
    }
    if (taken > 0) this.#write(this.#upstream?.socket, taken === chunk.length ? chunk : chunk.subarray(0, taken), this.#client)
    if (taken < chunk.length) this.#pending = chunk.subarray(taken) // the next request, pipelined
    if (this.#requestBody?.done === true && this.#responseBody?.done === true) this.#exchangeDone()
  }

  /** Writes to `to`; when its buffer is full, pauses `from` until it drains (the drain listeners resume it). */
  #write (to: Socket | undefined, chunk: Buffer, from: Socket | undefined): void {
    if (to !== undefined && !to.write(chunk)) from?.pause()
  }

  onUpstreamDrain (): void {
    if (this.#phase === 'tunnel' || this.#requestBody?.done === false) this.#client.resume()
  }

  onUpstreamData (chunk: Buffer): void {
    if (this.#phase === 'tunnel') {
      this.#write(this.#client, chunk, this.#upstream?.socket)
      return
    }
    this.#answered = true
    if (this.#response === undefined) {
      this.#responseBuffer = this.#responseBuffer.length === 0 ? chunk : Buffer.concat([this.#responseBuffer, chunk])
      this.#readResponseHead()
    } else {
      this.#sendResponseBody(chunk, 0)
    }
  }

  #readResponseHead (): void {
    for (;;) {
      const buffer = this.#responseBuffer
      const request = this.#request as RequestHead
      const head = parseResponseHead(buffer, 0, request.method)
      if (head === undefined) return
      if ('problem' in head) {
        this.#fail(502, `the upstream answered with an unreadable response: ${head.problem}`)
        return
      }
      this.#responseBuffer = EMPTY
      const rest = buffer.subarray(head.size)
      if (head.status === 101 && request.upgrade) {
        this.#startTunnel(buffer)
        return
      }
      if (head.status < 200) { // 100 Continue and other interim answers pass through; the final one follows
        this.#write(this.#client, buffer.subarray(0, head.size), this.#upstream?.socket)
        this.#responseBuffer = rest
        continue
      }
      this.#response = head
      this.#responseBody = new BodyReader(head.framing)
      this.#spoiled = head.close
      this.#closeAfter ||= head.close || this.draining
      if (this.#closeAfter && !head.close) { // the client must learn that this is the last response (the upstream's stays open)
        this.#client.write(serializeHead(buffer.toString('latin1', 0, buffer.indexOf('\r\n')), head.headers, h => h.lower !== 'connection' && h.lower !== 'keep-alive', [['connection', 'close']]), 'latin1')
        this.#sendResponseBody(rest, 0)
      } else {
        this.#sendResponseBody(buffer, head.size) // the head as it came, with the body that came with it
      }
      return
    }
  }

  /** Passes on the body bytes of `chunk` after its first `from` bytes (a response head, sent along in the same write). */
  #sendResponseBody (chunk: Buffer, from: number): void {
    const body = this.#responseBody as BodyReader
    let taken
    try {
      taken = from + body.consume(chunk, from)
    } catch (err) {
      if (!(err instanceof BodyProblem)) throw err
      this.#client.destroy() // the head went out already: all a client can be told is that the response broke
      return
    }
    if (taken > 0) this.#write(this.#client, taken === chunk.length ? chunk : chunk.subarray(0, taken), this.#upstream?.socket)
    if (taken < chunk.length) this.#spoiled = true // bytes after the response: not to be trusted again
    if (!body.done) return
    if (this.#requestBody?.done === false) { // answered before the request was all sent: the rest cannot go anywhere
      this.#spoiled = true
      this.#closeAfter = true
    }
    this.#exchangeDone()
  }

  #exchangeDone (): void {
    const upstream = this.#upstream
    this.#hooks.observe((this.#response as ResponseHead).status, performance.now() - this.#started)
    if (upstream !== undefined) this.#hooks.release(upstream, !this.#spoiled, this.#response?.keepAliveMs)
    this.#resetExchange()
    this.#nextRequest()
  }

  #resetExchange (): void {
    this.#upstream = undefined
    this.#forward = undefined
    this.#request = undefined
    this.#requestBody = undefined
    this.#response = undefined
    this.#responseBody = undefined
    this.#responseBuffer = EMPTY
    this.#answered = false
    this.#spoiled = false
    this.#started = 0
  }

  #nextRequest (): void {
    if (this.#closeAfter || this.draining) {
      this.#phase = 'closed'
      this.#client.end()
      return
    }
    this.#phase = 'head'
    if (this.#client.isPaused()) this.#client.resume()
    if (this.#pending.length > 0) this.#readHead()
  }

  onUpstreamClose (): void {
    const upstream = this.#upstream
    this.#upstream = undefined
    if (upstream === undefined) return
    if (this.#phase === 'tunnel') {
      this.#client.destroy()
      return
    }
    const forward = this.#forward as Forward
    if (!this.#answered && upstream.reused && (this.#request as RequestHead).framing.kind === 'none') {
      // A kept-alive connection the server closed just as the request went out: send it once more, on a new one.
      forward.reconnect(fresh => {
        if (fresh instanceof Error) this.#fail(502, `the upstream could not be reached: ${fresh.message}`)
        else if (this.#phase !== 'exchange') this.#hooks.release(fresh, true)
        else this.#send(fresh)
      })
      return
    }
    if (this.#response !== undefined && this.#response.framing.kind === 'close') {
      this.#closeAfter = true
      this.#upstream = upstream
      this.#exchangeDone() // the close is the end of this body
      return
    }
    if (!this.#answered) this.#fail(502, upstream.error === undefined ? 'the upstream closed the connection without answering' : `the upstream could not be reached: ${upstream.error.message}`)
    else this.#client.destroy() // mid-response: the client must not take a truncated body as whole
  }

  #startTunnel (bytes: Buffer): void {
    this.#phase = 'tunnel'
    const upstream = this.#upstream as Upstream
    this.#hooks.tunnel((this.#forward as Forward).request, this.#client, upstream.socket)
    this.#write(this.#client, bytes, upstream.socket)
    if (this.#pending.length > 0) this.#write(upstream.socket, this.#pending, this.#client)
    this.#pending = EMPTY
    this.#client.resume()
  }

  /**
   * The exchange cannot go on: answer `status` if nothing was sent yet, and keep the client's connection only if
   * the whole request was read (else what follows on it would be the rest of this body).
   */
  #fail (status: number, error: string): void {
    const upstream = this.#upstream
    this.#upstream = undefined
    if (upstream !== undefined) this.#hooks.release(upstream, false)
    if (this.#response === undefined) this.#refuse({ status, body: { error } }, this.#requestBody?.done !== true)
    else this.#client.destroy()
  }

  /** Answers the current request from the sidecar itself; a refusal that closes ends the connection. */
  #refuse (refusal: Refusal, close: boolean): void {
    const text = `${JSON.stringify(refusal.body)}\n`
    const closing = close || this.draining
    this.#client.write(`HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status] ?? 'Error'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\n${closing ? 'connection: close\r\n' : ''}\r\n${text}`)
    this.#hooks.observe(refusal.status, this.#started === 0 ? 0 : performance.now() - this.#started)
    this.#resetExchange()
    this.#closeAfter = closing
    this.#nextRequest()
  }

  #onClientClose (): void {
    const upstream = this.#upstream
    this.#phase = 'closed'
    this.#upstream = undefined
    if (upstream !== undefined) this.#hooks.release(upstream, false) // mid-exchange: its response has nowhere to go
  }
}
