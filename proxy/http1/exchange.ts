/**
 * One request and its response on an upstream connection: the request's head written as the sidecar rewrote it
 * and its body re-framed; the response head read, checked and rewritten for the client, its body re-framed; a
 * `101 Switching Protocols` accepted only for the upgrade the sidecar forwarded. The exchange owns its upstream
 * connection until it ends; the client connection (HttpConnection) owns everything else.
 */
import type { Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import { BodyProblem, BodyReader } from './body'
import { BodyWriter } from './body-writer'
import { BAD_LINE_END, ByteQueue, NO_HEAD_YET } from './byte-queue'
import { headerTokens } from './fields'
import { CHUNKED, UNTIL_CLOSE } from './framing'
import type { Framing } from './framing'
import type { RequestHead } from './request-head'
import { parseResponseHead } from './response-head'
import type { ResponseHead } from './response-head'
import type { Forward, HttpSettings } from './route'
import { requestHeadBytes, responseHeadBytes } from './serialize'
import type { Upstream, UpstreamOwner } from './upstream-pool'

const DISCARD = Object.freeze({ data: () => {}, end: () => {} })

/** What is wrong with the start of a chunked body, if anything (read apart, before the head is sent on). */
function bodyProblemIn (bytes: Buffer, maxTrailers: number): string | undefined {
  try {
    new BodyReader(CHUNKED, maxTrailers).read(bytes, 0, DISCARD)
    return undefined
  } catch (err) {
    if (!(err instanceof BodyProblem)) throw err
    return err.message
  }
}

/** What an exchange needs of its client connection. */
export interface ExchangeHost {
  readonly client: Socket
  readonly settings: HttpSettings
  readonly draining: boolean
  /** Where response heads are read (kept by the connection, so that no exchange allocates its own). */
  readonly responseInput: ByteQueue
  /** The response is complete: `close` ends the client connection. */
  ended: (exchange: Exchange, close: boolean) => void
  /** Nothing of a response was sent: answer `status` (and close when `close`). */
  failed: (exchange: Exchange, status: number, error: string, close: boolean) => void
  /** The upstream switched protocols (101): from now on bytes are relayed, never read as HTTP. */
  switched: (exchange: Exchange, upstream: Upstream) => void
  /** The upstream's buffer is full, or has room again: stop or go on reading the client. */
  pauseClient: () => void
  resumeClient: () => void
  release: (upstream: Upstream, reusable: boolean, keepAliveMs?: number) => void
}

export class Exchange implements UpstreamOwner {
  readonly head: RequestHead
  readonly forward: Forward
  /** The protocol of the upgrade forwarded with the request, if any. */
  readonly upgrade: string | undefined
  readonly started = performance.now()
  readonly #host: ExchangeHost
  /** The request's body, read from the client and written upstream; undefined for a request without one. */
  readonly #requestBody: { readonly reader: BodyReader, readonly writer: BodyWriter } | undefined
  #upstream: Upstream | undefined
  /** The connection's queue for response heads (one per connection, emptied for each exchange). */
  readonly #responseQueue: ByteQueue
  /** The final response: its head, and its body read from the upstream and written to the client. */
  #response: { readonly head: ResponseHead, readonly reader: BodyReader, readonly writer: BodyWriter } | undefined
  #answered = false
  /** The upstream connection cannot serve another exchange. */
  #spoiled = false
  #responseDone = false
  #closeClient: boolean
  /** The client left: a connection opened for a retry has no one to serve. */
  #abandoned = false

  constructor (host: ExchangeHost, head: RequestHead, forward: Forward, upgrade: string | undefined) {
    this.#host = host
    this.head = head
    this.forward = forward
    this.upgrade = upgrade
    this.#closeClient = head.close || host.draining
    // An upgrade request leaves the server's parser in a state of its own whatever it answers: never reused.
    this.#spoiled = head.upgrade.length > 0
    this.#requestBody = head.framing.kind === 'none' ? undefined : {
      reader: new BodyReader(head.framing, host.settings.limits.maxHeaders),
      writer: new BodyWriter(forward.upstream.socket, head.framing, forward.drop, () => { host.pauseClient() }, () => { this.#bodiesDone() })
    }
    this.#responseQueue = host.responseInput
    this.#responseQueue.clear()
  }

  get upstream (): Upstream | undefined {
    return this.#upstream
  }

  get requestComplete (): boolean {
    return this.#requestBody === undefined || this.#requestBody.reader.done
  }

  /** The status of the final response (0 before it came). */
  get responseStatus (): number {
    return this.#response?.head.status ?? 0
  }

  /** Sends the head, and what the client already sent of the body, on `upstream` (which this exchange now owns). */
  send (upstream: Upstream, pending: ByteQueue): void {
    this.#upstream = upstream
    upstream.owner = this
    const { first, drop, defaultHost } = this.forward
    const head = requestHeadBytes(this.head, { first, drop, defaultHost, upgrade: this.upgrade })
    const body = this.#requestBody
    if (pending.length === 0 || body === undefined || body.reader.done) {
      upstream.socket.write(head)
      return
    }
    body.writer.head(head) // the head and the body that came with it: one write, one TLS record
    pending.consume(this.fromClient(pending.view()))
    body.writer.flush()
  }

  /** Request body bytes from the client: returns how many belong to this request (the rest is the next one). */
  fromClient (chunk: Buffer): number {
    try {
      return this.#requestBody === undefined ? 0 : this.#requestBody.reader.read(chunk, 0, this.#requestBody.writer)
    } catch (err) {
      if (!(err instanceof BodyProblem)) throw err
      this.#fail(400, err.message, true)
      return chunk.length
    }
  }

  /** The client's buffer has room again: go on reading the response. */
  clientDrained (): void {
    this.#upstream?.socket.resume()
  }

  onUpstreamDrain (): void {
    if (!this.requestComplete) this.#host.resumeClient()
  }

  onUpstreamData (chunk: Buffer): void {
    this.#answered = true
    if (this.#response === undefined) {
      this.#responseQueue.append(chunk)
      this.#readResponseHead()
    } else {
      this.#responseFromUpstream(chunk)
    }
  }

  onUpstreamClose (): void {
    const upstream = this.#upstream
    this.#upstream = undefined
    if (upstream === undefined) return
    if (!this.#answered && upstream.reused && this.head.framing.kind === 'none') {
      // A kept-alive connection the server closed just as the request went out: send it once more, on a new one.
      this.forward.reconnect(fresh => {
        if (fresh instanceof Error) this.#fail(502, `the upstream could not be reached: ${fresh.message}`)
        else if (this.#abandoned) this.#host.release(fresh, true)
        else this.send(fresh, new ByteQueue())
      })
    } else if (this.#response?.head.framing.kind === 'close') {
      this.#spoiled = true
      this.#upstream = upstream
      this.#response.writer.end([]) // the close is the end of this body
    } else if (!this.#answered) {
      this.#fail(502, upstream.error === undefined ? 'the upstream closed the connection without answering' : `the upstream could not be reached: ${upstream.error.message}`)
    } else {
      this.#host.client.destroy() // mid-response: the client must not take a truncated body as whole
    }
  }

  /** The client left: the upstream connection is closed (its answer has nowhere to go). */
  abandon (): void {
    this.#abandoned = true
    const upstream = this.#upstream
    this.#upstream = undefined
    if (upstream !== undefined) this.#host.release(upstream, false)
  }

  #readResponseHead (): void {
    const { limits } = this.#host.settings
    for (;;) {
      const length = this.#responseQueue.headLength()
      if (length === NO_HEAD_YET) {
        if (this.#responseQueue.length > limits.maxHeadBytes) this.#fail(502, `the upstream's response head is larger than ${limits.maxHeadBytes} bytes`, true)
        return
      }
      if (length === BAD_LINE_END) {
        this.#fail(502, 'a line of the upstream\'s response head does not end in CRLF (a bare LF or CR)', true)
        return
      }
      const head = parseResponseHead(this.#responseQueue.view(), 0, length, this.head.method, limits)
      if ('problem' in head) {
        this.#fail(502, `the upstream answered with an unreadable response: ${head.problem}`, true)
        return
      }
      this.#responseQueue.consume(length)
      if (head.status === 101) {
        this.#switchProtocols(head)
        return
      }
      if (head.status >= 200) {
        this.#startResponse(head)
        return
      }
      // 100 Continue and other interim answers go to an HTTP/1.1 client; the final one follows.
      if (this.head.minor === 1) this.#host.client.write(responseHeadBytes(head, head.framing, 1, false, undefined))
    }
  }

  #startResponse (head: ResponseHead): void {
    const problem = head.framing.kind === 'chunked' ? bodyProblemIn(this.#responseQueue.view(), this.#host.settings.limits.maxHeaders) : undefined
    if (problem !== undefined) { // the body that came with the head is broken: the client can still be told so
      this.#fail(502, `the upstream answered with an unreadable body: ${problem}`, true)
      return
    }
    this.#spoiled ||= head.close
    // A body without a length goes to an HTTP/1.1 client chunked; an HTTP/1.0 client learns its end by the close.
    const unsized = head.framing.kind === 'chunked' || head.framing.kind === 'close'
    const sent: Framing = !unsized ? head.framing : this.head.minor === 1 ? CHUNKED : UNTIL_CLOSE
    this.#closeClient ||= sent.kind === 'close' || this.#host.draining
    if (!this.requestComplete) this.#closeClient = true // answered before the request was all sent (see #bodiesDone)
    const writer = new BodyWriter(this.#host.client, sent, () => false, () => { this.#upstream?.socket.pause() }, () => {
      this.#responseDone = true
      this.#bodiesDone()
    })
    // The head goes out with the body that came with it, in one write.
    writer.head(responseHeadBytes(head, sent, this.head.minor, this.#closeClient, undefined))
    this.#response = { head, reader: new BodyReader(head.framing, this.#host.settings.limits.maxHeaders), writer }
    if (head.framing.kind === 'none') {
      writer.end([])
      return
    }
    const rest = this.#responseQueue.take()
    if (rest.length > 0) this.#responseFromUpstream(rest)
    writer.flush()
  }

  #responseFromUpstream (chunk: Buffer): void {
    const response = this.#response
    if (response === undefined) return
    let taken
    try {
      taken = response.reader.read(chunk, 0, response.writer)
    } catch (err) {
      if (!(err instanceof BodyProblem)) throw err
      this.#spoiled = true
      this.#host.client.destroy() // the head went out already: all a client can be told is that the response broke
      return
    }
    if (taken < chunk.length) this.#spoiled = true // bytes after the response: not to be trusted again
  }

  #switchProtocols (head: ResponseHead): void {
    const offered = headerTokens(head.headers, 'upgrade').map(protocol => protocol.split('/')[0])
    if (this.upgrade === undefined || !offered.includes(this.upgrade.split('/')[0])) {
      this.#spoiled = true
      this.#fail(502, 'the upstream switched protocols to something the request did not ask for, or may not have', true)
      return
    }
    const upstream = this.#upstream
    this.#upstream = undefined
    this.#host.client.write(responseHeadBytes(head, head.framing, 1, false, this.upgrade))
    const rest = this.#responseQueue.take()
    if (rest.length > 0) this.#host.client.write(rest)
    if (upstream !== undefined) this.#host.switched(this, upstream)
  }

  /**
   * Called when either body is complete; the exchange ends with its response. A request body not all read by then
   * (the server answered early) cannot go anywhere: both connections close after the response.
   */
  #bodiesDone (): void {
    if (!this.#responseDone) return
    if (!this.requestComplete) {
      this.#spoiled = true
      this.#closeClient = true
    }
    const upstream = this.#upstream
    this.#upstream = undefined
    if (upstream !== undefined) this.#host.release(upstream, !this.#spoiled, this.#response?.head.keepAliveMs)
    this.#host.ended(this, this.#closeClient)
  }

  /**
   * The exchange cannot go on. Before a response started, the client is answered `status`; the connection closes
   * when `close` (a broken message: nothing after it can be trusted) or when the request was not all read.
   */
  #fail (status: number, error: string, close = false): void {
    const upstream = this.#upstream
    this.#upstream = undefined
    if (upstream !== undefined) this.#host.release(upstream, false)
    if (this.#response === undefined) this.#host.failed(this, status, error, close || !this.requestComplete)
    else this.#host.client.destroy()
  }
}
