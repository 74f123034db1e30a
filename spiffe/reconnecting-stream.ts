/**
 * One watched stream of the agent's APIs kept open: after a failure it is closed and opened again after a backoff
 * delay, and the backoff starts over once the agent answers. Shared by the sources (X509Source, DelegatedX509Source,
 * the shared bundle stream), so reconnecting works the same everywhere.
 */
import type { Backoff } from './backoff'

export class ReconnectingStream {
  /** Opens the stream; what it returns closes it. */
  readonly #open: () => () => void
  readonly #backoff: Backoff
  #close?: () => void
  #retry?: NodeJS.Timeout
  #stopped = false

  /** Opens the stream at once. */
  constructor (open: () => () => void, backoff: Backoff) {
    this.#open = open
    this.#backoff = backoff
    this.#close = open()
  }

  /** A message came: the agent answers, so the next failure waits the first delay again. */
  answered (): void {
    this.#backoff.reset()
  }

  /** The stream failed or ended: closes it and opens it again after the next delay. */
  failed (): void {
    if (this.#stopped) return
    this.#disconnect()
    clearTimeout(this.#retry)
    this.#scheduleReconnect()
  }

  /**
   * Starts the backoff again from its first delay and, if a reconnection is waiting, moves it to that delay (for a
   * caller whose SVID has expired, so the agent's return is noticed at once rather than after the longest delay).
   * With the stream open or being opened it only resets the backoff: never a second stream.
   */
  retrySoon (): void {
    if (this.#stopped) return
    this.#backoff.reset()
    if (this.#retry === undefined) return
    clearTimeout(this.#retry)
    this.#scheduleReconnect()
  }

  /** Closes the stream and cancels any reconnection, for good. Idempotent. */
  stop (): void {
    if (this.#stopped) return
    this.#stopped = true
    clearTimeout(this.#retry)
    this.#retry = undefined
    this.#disconnect()
  }

  #disconnect (): void {
    const close = this.#close
    this.#close = undefined
    close?.()
  }

  /** `#retry` is set exactly while a reconnection waits. */
  #scheduleReconnect (): void {
    this.#retry = setTimeout(() => {
      this.#retry = undefined
      this.#close = this.#open()
    }, this.#backoff.next())
  }
}
