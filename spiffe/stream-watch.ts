/**
 * Watching one gRPC server stream of the agent's APIs: each message parsed and handed on, a message that does not
 * parse reported while the watch goes on (the next full state may be fine), and the stream's failure or end reported
 * once. Shared by the Workload API and Delegated Identity API clients.
 */
import type { ClientReadableStream, ServiceError } from '@grpc/grpc-js'

export interface StreamWatch<M, P> {
  parse: (message: M) => P
  onUpdate: (parsed: P) => void
  /** A message that did not parse (the watch goes on), or, once, the stream's failure or end. */
  onError: (err: Error) => void
  /** The client's error for a gRPC failure of this stream. */
  failed: (err: ServiceError) => Error
  /** The client's error for a stream the server ended, which a watched stream never should. */
  ended: () => Error
}

/** Watches `call` until the returned function is called (which cancels it, and nothing more is reported). */
export function watchStream<M, P> (call: ClientReadableStream<M>, watch: StreamWatch<M, P>): () => void {
  let cancelled = false
  let ended = false
  const fail = (err: Error): void => {
    if (cancelled || ended) return
    ended = true
    watch.onError(err)
  }
  call.on('data', (message: M) => {
    if (cancelled || ended) return
    let parsed: P
    try {
      parsed = watch.parse(message)
    } catch (err) {
      watch.onError(err as Error)
      return
    }
    watch.onUpdate(parsed)
  })
  call.on('error', (err: ServiceError) => fail(watch.failed(err)))
  call.on('end', () => fail(watch.ended()))
  return () => {
    cancelled = true
    call.cancel()
  }
}
