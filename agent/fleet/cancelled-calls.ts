/**
 * Calls on the fleet's port that end before they are answered, counted and logged like other refused calls (reason
 * `cancelled`, with the method): the caller cancelled, or gRPC itself ended the call, as it does, before any handler
 * sees it, for a message over its size limit (RESOURCE_EXHAUSTED) or a malformed deadline. grpc-js reports those
 * only as a cancel, so the log names both causes. A call answered by its handler (or refused by the authorization,
 * which must come after this interceptor in the server's list) is not logged here.
 */
import { ServerInterceptingCall } from '@grpc/grpc-js'
import type { ServerInterceptor } from '@grpc/grpc-js'
import type { FleetRefusals } from './refusals'

export interface CancelledCallsDeps {
  readonly refusals: FleetRefusals
  /** The caller's network address, for the log. */
  readonly addressOf: (peer: string) => string
  /** The largest message gRPC accepts, for the log. */
  readonly maxMessageBytes: number
}

export function cancelledCallsInterceptor (deps: CancelledCallsDeps): ServerInterceptor {
  const limit = `${deps.maxMessageBytes / (1024 * 1024)} MiB`
  return (method, call) => {
    let answered = false
    return new ServerInterceptingCall(call, {
      start: next => {
        next({
          // grpc-js also reports the end of every answered call as a cancel.
          onCancel: () => {
            if (answered) return
            deps.refusals.refused(deps.addressOf(call.getPeer()), 'cancelled', {
              method: method.path,
              message: `the call ended before it was answered: cancelled by the caller, or a message over gRPC's ${limit} limit refused (RESOURCE_EXHAUSTED)`
            })
          }
        })
      },
      sendStatus: (status, next) => {
        answered = true
        next(status)
      }
    })
  }
}
