/**
 * The callers of a source's `ready(timeoutMs)` waiting for its first state: each settled once, by the state, by a
 * failure (the source closed), or by its own timeout with the error the source describes then.
 */
interface Waiter<T> {
  resolve: (value: T) => void
  reject: (err: Error) => void
}

export class ReadyWaiters<T> {
  readonly #waiters = new Set<Waiter<T>>()

  /** Waits for resolveAll or rejectAll; after `timeoutMs`, rejects with `timedOut()`'s error. */
  async wait (timeoutMs: number, timedOut: () => Error): Promise<T> {
    return await new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter)
        reject(timedOut())
      }, timeoutMs)
      const settle = <V>(done: (value: V) => void) => (value: V): void => {
        clearTimeout(timer)
        this.#waiters.delete(waiter)
        done(value)
      }
      const waiter: Waiter<T> = { resolve: settle(resolve), reject: settle(reject) }
      this.#waiters.add(waiter)
    })
  }

  resolveAll (value: T): void {
    for (const waiter of this.#waiters) waiter.resolve(value)
  }

  rejectAll (err: Error): void {
    for (const waiter of this.#waiters) waiter.reject(err)
  }
}
