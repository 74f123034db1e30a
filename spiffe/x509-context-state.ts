/**
 * What a source of X509Contexts holds for its callers: the context to use now, the ready() calls waiting for one,
 * and which new context is a real change (every message of the agent's APIs is the full state, sent again on
 * reconnection and on any change; an unchanged one must not rebuild TLS contexts). Shared by X509Source and
 * DelegatedX509Source.
 */
import { ReadyWaiters } from './ready-waiters'
import { sourceClosed } from './source-errors'
import { fingerprintOf } from './x509-context'
import type { X509Context } from './x509-context'

export class X509ContextState {
  /** Names the source in ERR_SOURCE_CLOSED's message. */
  readonly #what: string
  readonly #waiters = new ReadyWaiters<X509Context>()
  #current?: X509Context
  #fingerprint?: string
  #closed = false

  constructor (what: string) {
    this.#what = what
  }

  get current (): X509Context | undefined {
    return this.#current
  }

  get closed (): boolean {
    return this.#closed
  }

  /** The current context, waiting up to `timeoutMs` for one; then `timedOut()`'s error. ERR_SOURCE_CLOSED once closed. */
  async ready (timeoutMs: number, timedOut: () => Error): Promise<X509Context> {
    if (this.#closed) throw sourceClosed(this.#what)
    if (this.#current !== undefined) return this.#current
    return await this.#waiters.wait(timeoutMs, timedOut)
  }

  /** Makes `context` current and wakes ready() callers, unless it equals the current one: whether it changed. */
  publish (context: X509Context): boolean {
    const fingerprint = fingerprintOf(context)
    if (fingerprint === this.#fingerprint) return false
    this.#fingerprint = fingerprint
    this.#current = context
    this.#waiters.resolveAll(context)
    return true
  }

  /** Drops the current context (ready() waits again); what was current. */
  withdraw (): X509Context | undefined {
    const previous = this.#current
    this.#current = undefined
    this.#fingerprint = undefined
    return previous
  }

  /** Rejects waiting ready() calls with ERR_SOURCE_CLOSED, and every later one. Idempotent. */
  close (): void {
    if (this.#closed) return
    this.#closed = true
    this.#waiters.rejectAll(sourceClosed(this.#what))
  }
}
