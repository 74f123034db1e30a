/**
 * The updates of one server stream that always sends its full current state: one message at a time, and an update
 * asked for while one is being sent goes out after it, once, with the state as it is then (a burst of changes
 * becomes one message with the latest state). Shared by the Workload API's streams and the Delegated Identity API's.
 */
export class CoalescedUpdates {
  readonly #send: () => Promise<void>
  readonly #failed: (err: unknown) => void
  readonly #open: () => boolean
  #sending = false
  #pending = false

  /**
   * `send` writes the state; `failed` is told when it throws (the stream is then usually ended); `open` says whether
   * the stream still wants updates (a pending one is dropped once it does not).
   */
  constructor (send: () => Promise<void>, failed: (err: unknown) => void, open: () => boolean) {
    this.#send = send
    this.#failed = failed
    this.#open = open
  }

  request (): void {
    if (this.#sending) {
      this.#pending = true
      return
    }
    this.#sending = true
    this.#send().catch(this.#failed).finally(() => {
      this.#sending = false
      if (this.#pending && this.#open()) {
        this.#pending = false
        this.request()
      }
    })
  }
}
