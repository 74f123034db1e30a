/**
 * What every service of SPIRE's server API does around its calls (on the local socket, and on the fleet's TCP port):
 * answer a unary call with its work's result, or with the SpireApiError it threw as the call's status (anything
 * else: INTERNAL, logged); log each batch of changes with its caller; and refuse a method Chaperone does not serve
 * with UNIMPLEMENTED, naming it.
 */
import { status } from '@grpc/grpc-js'
import type { ServerUnaryCall, sendUnaryData } from '@grpc/grpc-js'
import type { Logger } from 'pino'
import { SpireApiError } from './api-error'

export type Unary<Req, Res> = (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void

/** One changed item of a batch, for the log: its ID (an entry's ID, a trust domain's name) and its outcome. */
export interface ChangedItem {
  readonly id: string
  readonly code: number
}

export interface ServiceCalls {
  readonly unary: <Req, Res>(method: string, work: (request: Req, call: ServerUnaryCall<Req, Res>) => Res) => Unary<Req, Res>
  /** The same for work that completes later (signing with the CA). */
  readonly unaryAsync: <Req, Res>(method: string, work: (request: Req, call: ServerUnaryCall<Req, Res>) => Promise<Res>) => Unary<Req, Res>
  /** Logs a batch's changes under `items` ("entries", "bundles"): which method, which items with which outcome, who asked. */
  readonly logChanges: (method: string, call: ServerUnaryCall<unknown, unknown>, items: string, changed: readonly ChangedItem[]) => void
}

/** Who made a call, for the log (the local socket: uid and pid; the fleet's port: address and SPIFFE ID). */
export interface CallerLog { of: (peer: string) => object }

export function serviceCalls (logger: Logger, callers: CallerLog): ServiceCalls {
  const failed = (method: string, err: unknown, callback: sendUnaryData<never>): void => {
    if (err instanceof SpireApiError) {
      logger.info({ method, code: status[err.grpcCode], reason: err.message }, 'SPIRE server API: request refused')
      callback(err.toServiceError())
      return
    }
    logger.error({ err, method }, 'SPIRE server API: request failed')
    callback(new SpireApiError(status.INTERNAL, `${method} failed; see the agent's log`).toServiceError())
  }
  return {
    unary: (method, work) => (call, callback) => {
      try {
        callback(null, work(call.request, call))
      } catch (err) {
        failed(method, err, callback)
      }
    },
    unaryAsync: (method, work) => (call, callback) => {
      work(call.request, call).then(response => { callback(null, response) }, (err: unknown) => { failed(method, err, callback) })
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
