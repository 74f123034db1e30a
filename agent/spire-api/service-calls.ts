/**
 * What every service on the SPIRE server API socket does around its calls: answer a unary call with its work's
 * result, or with the SpireApiError it threw as the call's status (anything else: INTERNAL, logged); log each batch
 * of changes with its caller; and refuse a method Chaperone does not serve with UNIMPLEMENTED, naming it.
 */
import { status } from '@grpc/grpc-js'
import type { ServerUnaryCall, sendUnaryData } from '@grpc/grpc-js'
import type { Logger } from 'pino'
import { SpireApiError } from './api-error'
import type { CallerRegistry } from './callers'

export type Unary<Req, Res> = (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void

/** One changed item of a batch, for the log: its ID (an entry's ID, a trust domain's name) and its outcome. */
export interface ChangedItem {
  readonly id: string
  readonly code: number
}

export interface ServiceCalls {
  readonly unary: <Req, Res>(method: string, work: (request: Req, call: ServerUnaryCall<Req, Res>) => Res) => Unary<Req, Res>
  /** Logs a batch's changes under `items` ("entries", "bundles"): which method, which items with which outcome, who asked. */
  readonly logChanges: (method: string, call: ServerUnaryCall<unknown, unknown>, items: string, changed: readonly ChangedItem[]) => void
}

export function serviceCalls (logger: Logger, callers: CallerRegistry): ServiceCalls {
  return {
    unary: (method, work) => (call, callback) => {
      try {
        callback(null, work(call.request, call))
      } catch (err) {
        if (err instanceof SpireApiError) {
          logger.info({ method, code: status[err.grpcCode], reason: err.message }, 'SPIRE server API: request refused')
          callback(err.toServiceError())
          return
        }
        logger.error({ err, method }, 'SPIRE server API: request failed')
        callback(new SpireApiError(status.INTERNAL, `${method} failed; see the agent's log`).toServiceError())
      }
    },
    logChanges: (method, call, items, changed) => {
      logger.info({ method, caller: callers.of(call.getPeer()), [items]: changed.map(r => ({ id: r.id, code: status[r.code] })) },
        `SPIRE server API: ${method}`)
    }
  }
}

/** A method Chaperone does not serve, and why. */
export function unimplemented (service: string, method: string, why: string): SpireApiError {
  return new SpireApiError(status.UNIMPLEMENTED, `/${service}/${method} is not implemented: ${why}`)
}
