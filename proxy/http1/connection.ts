/**
 * One client connection in HTTP mode. Request heads are read in a loop, never by recursion per message (a few
 * thousand pipelined requests refused in one write must not grow the stack), each within a deadline of its own
 * (`timeouts.head`: from the connection's start for the first, from its first byte for the next), and handed to
 * the listener to route: answer it, forward it (an Exchange), or tunnel (CONNECT). One request at a time, so
 * pipelined requests and refusals are answered in order. The connection reads the client only while it has room:
 * pipelined bytes beyond a head's size, or refusals the client does not read, pause it.
 */
import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import { BAD_LINE_END, ByteQueue, NO_HEAD_YET } from './byte-queue'
import { Exchange } from './exchange'
import type { ExchangeHost } from './exchange'
import type { HeadProblem } from './head-problem'
import { Relay } from './relay'
import { parseRequestHead } from './request-head'
import type { RequestHead } from './request-head'
import type { HttpConnectionHooks, RouteResult } from './route'
import type { Upstream } from './upstream-pool'

type Phase = 'head' | 'routing' | 'exchange' | 'relay' | 'closed'

/** A body of at least one byte follows the head (`Content-Length: 0` is none). */
function hasBody (head: RequestHead): boolean {
  return head.framing.kind === 'chunked' || (head.framing.kind === 'length' && head.framing.length > 0)
}

/** Requests answered by the sidecar itself in one turn of the loop before other connections get theirs. */
const ANSWERS_PER_TURN = 64

export class HttpConnection<C> implements ExchangeHost {
  readonly client: Socket
  readonly #hooks: HttpConnectionHooks<C>
  readonly #context: C
  #phase: Phase = 'head'
  /** Client bytes not handled yet: a partial head, or pipelined requests waiting their turn. */
  readonly #input = new ByteQueue()
  readonly responseInput = new ByteQueue()
  #exchange: Exchange | undefined
  #relay: Relay | undefined
  #looping = false
  /** Paused until the client reads what it was sent. */
  #awaitingDrain = false
  readonly #headTimer: NodeJS.Timeout
  #headArmed = true
  /** Stop after the current exchange (the sidecar is draining). */
  draining = false

  constructor (client: Socket, hooks: HttpConnectionHooks<C>, context: C) {
    this.client = client
    this.#hooks = hooks
    this.#context = context
    client.setNoDelay(true)
    client.setTimeout(hooks.settings.idleTimeoutMs, () => { client.destroy() })
    this.#headTimer = setTimeout(() => { this.#headTimedOut() }, hooks.settings.headTimeoutMs).unref()
    client.on('data', (chunk: Buffer) => { this.#onClientData(chunk) })
    client.on('drain', () => { this.#onClientDrain() })
    client.on('error', () => { client.destroy() })
    client.on('close', () => { this.#onClientClose() })
  }

  /** What the listener gave this connection: the verified peer inbound, the destination outbound. */
  get context (): C {
    return this.#context
  }

  get settings (): HttpConnectionHooks<C>['settings'] {
    return this.#hooks.settings
  }

  /** Waiting for a request with nothing buffered: safe to close. */
  get idle (): boolean {
    return this.#phase === 'head' && this.#input.length === 0
  }

  destroy (): void {
    this.client.destroy()
  }

  #onClientData (chunk: Buffer): void {
    switch (this.#phase) {
      case 'closed':
        return
      case 'relay':
        this.#relay?.fromClient(chunk)
        return
      case 'exchange': {
        const exchange = this.#exchange as Exchange
        const taken = exchange.requestComplete ? 0 : exchange.fromClient(chunk)
        if (taken < chunk.length) this.#queue(taken === 0 ? chunk : chunk.subarray(taken))
        return
      }
      case 'routing':
        this.#queue(chunk)
        return
      case 'head':
        this.#queue(chunk)
        this.#loop()
    }
  }

  /** Keeps bytes for later; a client that sends far ahead of what is being served is read no further for now. */
  #queue (chunk: Buffer): void {
    this.#input.append(chunk)
    if (this.#input.length > this.#hooks.settings.limits.maxHeadBytes) this.client.pause()
  }

  #onClientDrain (): void {
    if (this.#relay !== undefined) this.#relay.clientDrained()
    this.#exchange?.clientDrained()
    if (!this.#awaitingDrain) return
    this.#awaitingDrain = false
    this.#loop()
  }

  /** Reads and routes request heads while the connection waits for one. */
  #loop (): void {
    if (this.#looping) return // the loop running further up the stack picks up the new state
    this.#looping = true
    try {
      for (let answered = 0; this.#phase === 'head'; answered++) {
        if (this.client.writableNeedDrain) { // refusals the client does not read: stop until it does
          this.#awaitingDrain = true
          this.client.pause()
          return
        }
        if (answered === ANSWERS_PER_TURN) {
          setImmediate(() => { this.#loop() })
          return
        }
        const length = this.#input.headLength()
        if (length === NO_HEAD_YET) {
          this.#waitForHead()
          return
        }
        if (length === BAD_LINE_END) {
          this.#refuseHead({ status: 400, problem: 'a line of the request head does not end in CRLF (a bare LF or CR)' })
          continue
        }
        this.#headArmed = false
        const head = parseRequestHead(this.#input.view(), 0, length, this.#hooks.settings.limits)
        this.#input.consume(length)
        if ('problem' in head) this.#refuseHead(head)
        else this.#route(head)
      }
    } finally {
      this.#looping = false
    }
  }

  #waitForHead (): void {
    const { limits } = this.#hooks.settings
    if (this.#input.length > limits.maxHeadBytes) {
      this.#refuseHead({ status: 431, problem: `the request head is larger than ${limits.maxHeadBytes} bytes`, limit: 'head_too_large' })
      return
    }
    if (this.#input.length > 0 && !this.#headArmed) { // the first byte of the next head: its deadline starts
      this.#headArmed = true
      this.#headTimer.refresh()
    }
    if (this.client.isPaused() && !this.#awaitingDrain) this.client.resume()
  }

  #headTimedOut (): void {
    if (!this.#headArmed || this.#phase !== 'head') return
    this.#refuseHead({ status: 408, problem: `the request head did not arrive within ${this.#hooks.settings.headTimeoutMs} ms`, limit: 'head_timeout' })
  }

  #refuseHead (problem: HeadProblem): void {
    if (problem.limit !== undefined) this.#hooks.limited(problem.limit, this.#context, this.client.remoteAddress)
    this.#answer(problem.status, { error: problem.problem }, true, performance.now())
  }

  #route (head: RequestHead): void {
    const upgrade = this.#upgradeOf(head)
    if (typeof upgrade === 'object') {
      this.#answer(400, { error: upgrade.problem }, true, performance.now())
      return
    }
    this.#phase = 'routing'
    const started = performance.now()
    this.#hooks.route(head, this.#context, result => { this.#routed(head, upgrade, started, result) })
  }

  /** The protocol forwarded for an upgrade request: the first one asked for that the listener allows, if any. */
  #upgradeOf (head: RequestHead): string | undefined | { problem: string } {
    const upgrade = head.upgrade.find(protocol => this.#hooks.settings.upgrades.has(protocol.split('/')[0]))
    if (upgrade !== undefined && hasBody(head)) return { problem: 'an upgrade request may not have a body' }
    return upgrade
  }

  #routed (head: RequestHead, upgrade: string | undefined, started: number, result: RouteResult): void {
    if (this.#phase !== 'routing') { // the client left meanwhile
      if (result.kind !== 'refusal') this.#hooks.release(result.upstream, result.kind === 'forward')
      return
    }
    if (result.kind === 'refusal') {
      // A refused request's body is not read, nor is a refused upgrade's next protocol, nor anything after a bad
      // request (400): the connection closes after them. A denial (403) or an unreachable upstream (502) is no
      // fault of the connection, which goes on.
      this.#answer(result.status, result.body, result.status === 400 || head.close || hasBody(head) || upgrade !== undefined, started)
    } else if (result.kind === 'tunnel') {
      this.client.write('HTTP/1.1 200 Connection Established\r\n\r\n')
      this.#hooks.observe(200, performance.now() - started)
      this.switched(undefined, result.upstream, result.request)
    } else {
      this.#phase = 'exchange'
      this.#exchange = new Exchange(this, head, result, upgrade)
      this.#exchange.send(result.upstream, this.#input)
      if (this.#input.length <= this.#hooks.settings.limits.maxHeadBytes) this.resumeClient()
    }
    this.#loop()
  }

  /** Answers the current request from the sidecar itself. */
  #answer (status: number, body: object, close: boolean, started: number): void {
    const text = `${JSON.stringify(body)}\n`
    const closing = close || this.draining
    this.client.write(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\n${closing ? 'connection: close\r\n' : ''}\r\n${text}`)
    this.#hooks.observe(status, performance.now() - started)
    this.#next(closing)
  }

  /** The current request is done with: close, or wait for the next head. */
  #next (close: boolean): void {
    this.#exchange = undefined
    if (close || this.draining) {
      this.#phase = 'closed'
      this.#input.clear()
      this.client.end()
      return
    }
    this.#phase = 'head'
  }

  ended (exchange: Exchange, close: boolean): void {
    if (exchange !== this.#exchange) return
    this.#hooks.observe(exchange.responseStatus, performance.now() - exchange.started)
    this.#next(close)
    this.#loop()
  }

  failed (exchange: Exchange, status: number, error: string, close: boolean): void {
    if (exchange !== this.#exchange || this.#phase !== 'exchange') return
    this.#answer(status, { error }, close, exchange.started)
    this.#loop()
  }

  /** The connection becomes a relay of bytes: after an upstream's 101 (`exchange`), or a CONNECT. */
  switched (exchange: Exchange | undefined, upstream: Upstream, request = exchange?.forward.request): void {
    this.#exchange = undefined
    this.#phase = 'relay'
    this.#headArmed = false
    this.#relay = new Relay(this.client, upstream)
    if (request !== undefined) this.#hooks.tunnel(request, this.client, upstream.socket)
    if (this.#input.length > 0) this.#relay.fromClient(this.#input.take())
    this.resumeClient()
  }

  pauseClient (): void {
    this.client.pause()
  }

  resumeClient (): void {
    if (!this.#awaitingDrain) this.client.resume()
  }

  release (upstream: Upstream, reusable: boolean, keepAliveMs?: number): void {
    this.#hooks.release(upstream, reusable, keepAliveMs)
  }

  #onClientClose (): void {
    this.#phase = 'closed'
    clearTimeout(this.#headTimer)
    this.#exchange?.abandon()
    this.#exchange = undefined
    this.#relay?.clientClosed()
    this.#input.clear()
  }
}
