/**
 * A PERMISSION_DENIED status carrying SPIRE's reason, as SPIRE's server sends it to agents
 * (pkg/common/util/errorutil PermissionDenied): the reason travels as a `spire.api.types.PermissionDeniedDetails`
 * inside the `google.rpc.Status` of the `grpc-status-details-bin` trailer. A SPIRE agent reads it to attest again
 * (AGENT_EXPIRED, AGENT_NOT_ATTESTED, AGENT_NOT_ACTIVE, AGENT_MUST_REATTEST) or to stop (AGENT_BANNED:
 * pkg/common/nodeutil ShouldAgentReattest, ShouldAgentShutdown); without it, an evicted agent would only fail.
 * The three small messages are written here by hand (field numbers from google/rpc/status.proto,
 * google/protobuf/any.proto and spire/api/types/status.proto).
 */
import { Metadata, status } from '@grpc/grpc-js'
import type { StatusObject } from '@grpc/grpc-js'
import { statusDetails } from '../status-details'

export const AGENT_DENIAL_REASONS = {
  AGENT_EXPIRED: 1,
  AGENT_NOT_ATTESTED: 2,
  AGENT_NOT_ACTIVE: 3,
  AGENT_BANNED: 4,
  AGENT_MUST_REATTEST: 5
} as const

export type AgentDenialCode = keyof typeof AGENT_DENIAL_REASONS

export function isAgentDenialCode (reason: string): reason is AgentDenialCode {
  return Object.hasOwn(AGENT_DENIAL_REASONS, reason)
}

const DETAILS_TYPE_URL = 'type.googleapis.com/spire.api.types.PermissionDeniedDetails'

/** The status to end a call with: PERMISSION_DENIED, `message`, and `reason` in its details. */
export function permissionDenied (message: string, reason: AgentDenialCode): StatusObject {
  const details = statusDetails(message)
  const metadata = new Metadata()
  const reasonMessage = field(1, varint(AGENT_DENIAL_REASONS[reason]))
  const any = Buffer.concat([bytesField(1, Buffer.from(DETAILS_TYPE_URL)), bytesField(2, reasonMessage)])
  metadata.set('grpc-status-details-bin', Buffer.concat([
    field(1, varint(status.PERMISSION_DENIED)),
    bytesField(2, Buffer.from(details)),
    bytesField(3, any)
  ]))
  return { code: status.PERMISSION_DENIED, details, metadata }
}

/** A varint field: its key (wire type 0) and value. */
function field (number: number, value: Buffer): Buffer {
  return Buffer.concat([varint(number << 3), value])
}

/** A length-delimited field (wire type 2). */
function bytesField (number: number, value: Buffer): Buffer {
  return Buffer.concat([varint((number << 3) | 2), varint(value.length), value])
}

function varint (value: number): Buffer {
  const bytes: number[] = []
  let rest = value
  while (rest > 0x7f) {
    bytes.push((rest & 0x7f) | 0x80)
    rest = Math.floor(rest / 128)
  }
  bytes.push(rest)
  return Buffer.from(bytes)
}
