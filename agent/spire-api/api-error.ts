/**
 * Failures of SPIRE's server API as SPIRE reports them: a gRPC code and SPIRE's message, either as the call's status
 * or, in a batch, as one item's Status. The codes are SPIRE's API contract (its clients branch on them, e.g.
 * ALREADY_EXISTS on create), so they are kept exactly; the messages follow SPIRE's wording where SPIRE has one.
 */
import { Metadata, status } from '@grpc/grpc-js'
import type { ServiceError } from '@grpc/grpc-js'
import type { StatusMessage } from './messages'
import { statusDetails } from '../status-details'

export class SpireApiError extends Error {
  readonly grpcCode: status

  constructor (grpcCode: status, message: string) {
    super(message)
    this.grpcCode = grpcCode
    this.name = 'SpireApiError'
  }

  /** SPIRE's MakeStatus/MakeErr: the operation's message, then the cause's (NotFound keeps only its own). */
  static of (grpcCode: status, message: string, cause?: Error): SpireApiError {
    return new SpireApiError(grpcCode, cause === undefined || grpcCode === status.NOT_FOUND ? message : `${message}: ${cause.message}`)
  }

  /** A problem with what the caller sent. */
  static invalid (message: string): SpireApiError {
    return new SpireApiError(status.INVALID_ARGUMENT, message)
  }

  /** Runs `read`; a SpireApiError it throws comes out INVALID_ARGUMENT, its reason after `prefix` ("invalid parent ID: …"). */
  static within<T> (prefix: string, read: () => T): T {
    try {
      return read()
    } catch (err) {
      if (err instanceof SpireApiError) throw SpireApiError.invalid(`${prefix}: ${err.message}`)
      throw err
    }
  }

  /** As the status of a batch item. */
  toStatus (): StatusMessage {
    return { code: this.grpcCode, message: this.message }
  }

  /** As the status of the whole call (a message echoing a huge input is cut: statusDetails). */
  toServiceError (): ServiceError {
    const details = statusDetails(this.message)
    return Object.assign(new Error(details), { code: this.grpcCode, details, metadata: new Metadata() })
  }
}

/** A batch item that worked. */
export const OK_STATUS: Readonly<StatusMessage> = Object.freeze({ code: status.OK, message: 'OK' })
