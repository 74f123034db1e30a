/**
 * Agent/AttestAgent as a SPIRE server answers it (SPIRE pkg/server/api/agent/v1/service.go AttestAgent), for x509pop:
 * the params (attestation data and the CSR) checked with SPIRE's messages, the birth certificate verified and a
 * challenge sent (x509pop-verifier.ts), the response verified, a banned agent refused, then the agent's X509-SVID for
 * the CSR's key recorded with the agent's selectors and sent, and the stream ended. Every refusal ends the stream
 * with SPIRE's status and message, is counted by reason and logged (rate-limited per address and reason). An
 * attestation must finish within its deadline: a device that stops answering holds nothing for long. What
 * attestations in progress hold (a verified chain, a timer) is bounded: no more at once per address, and in all,
 * than the port admits connections (a device attests on a connection of its own), beyond which a call is refused
 * RESOURCE_EXHAUSTED at once; a call cancelled (or ended by gRPC, e.g. for a message over its size limit, which
 * cancelled-calls.ts logs) gives its share back at once.
 */
import { status } from '@grpc/grpc-js'
import type { ServerDuplexStream } from '@grpc/grpc-js'
import type { Logger } from 'pino'
import type { SpiffeId } from '../../spiffe/id'
import { X509popRefusal } from './errors'
import type { FleetRefusals } from './refusals'
import type { PendingX509pop, X509popResult, X509popVerifier } from './x509pop-verifier'

/** AttestAgentRequest as it arrives (proto-loader, keepCase, oneofs). */
interface AttestAgentRequest {
  step?: 'params' | 'challenge_response'
  params?: { data?: { type: string, payload: Buffer } | null, params?: { csr: Buffer } | null } | null
  challenge_response?: Buffer
}

/** The agent X509-SVID issued for an attestation. */
export interface IssuedAgentSvid {
  readonly chain: readonly Buffer[]
  readonly expiresAt: Date
  /** The leaf's serial number, hex. */
  readonly serial: string
}

export interface AttestAgentDeps {
  readonly verifier: X509popVerifier
  /** Whether the agent is banned: refused before anything is issued. */
  readonly isBanned: (agentId: SpiffeId) => boolean
  /** The agent's X509-SVID for the key of `csr`; a CSR that cannot be used throws (InvalidArgument "failed to parse CSR"). */
  readonly signAgentSvid: (agentId: SpiffeId, csr: Buffer) => Promise<IssuedAgentSvid>
  /** Stores the attestation (selectors, the SVID's serial and expiry): a new agent, or one attesting again. */
  readonly record: (result: X509popResult, svid: IssuedAgentSvid) => void
  /** The caller's network address, for the log. */
  readonly addressOf: (peer: string) => string
  readonly logger: Logger
  /** Where refusals are counted and logged ('fleet: attestation refused'). */
  readonly refusals: FleetRefusals
  /** How long one attestation may take, start to end; 30 s unless set. */
  readonly timeoutMs?: number
  /** How many attestations may be in progress at once: per caller address, and in all. */
  readonly limits: { readonly perAddress: number, readonly total: number }
}

export type AttestRefusalReason = 'malformed' | 'unknown_attestor' | 'x509pop' | 'banned' | 'csr' | 'timeout' | 'busy' | 'internal'

/** One refusal as the stream ends with it. */
class Refusal extends Error {
  constructor (readonly code: status, readonly reason: AttestRefusalReason, message: string) {
    super(message)
  }
}

export const X509POP_ATTESTOR = 'x509pop'

export class AttestAgentHandler {
  readonly #deps: AttestAgentDeps
  readonly #inProgress = new Map<string, number>()
  #total = 0

  constructor (deps: AttestAgentDeps) {
    this.#deps = deps
  }

  /** The grpc-js handler of the bidirectional AttestAgent call. */
  readonly handle = (call: ServerDuplexStream<AttestAgentRequest, object>): void => {
    const address = this.#deps.addressOf(call.getPeer())
    const busy = this.#admit(address)
    if (busy !== undefined) {
      this.#refused(busy, address)
      call.emit('error', { code: busy.code, details: busy.message })
      return
    }
    let pending: PendingX509pop | undefined
    let csr: Buffer | undefined
    // Set once the challenge response arrives: whatever the device sends after it is ignored, as SPIRE reads no
    // further, so one attestation verifies, signs and records at most once.
    let answered = false
    let done = false
    const finish = (refusal?: Refusal): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      this.#release(address)
      call.removeAllListeners('data')
      if (refusal !== undefined) this.#refused(refusal, address)
      // A cancelled call has no one left to answer (grpc-js destroys the stream).
      if (call.cancelled) return
      if (refusal === undefined) call.end()
      else call.emit('error', { code: refusal.code, details: refusal.message })
    }
    const timer = setTimeout(() => { finish(new Refusal(status.DEADLINE_EXCEEDED, 'timeout', 'attestation did not complete in time')) }, this.#deps.timeoutMs ?? 30_000)
    call.on('data', (request: AttestAgentRequest) => {
      if (done || answered) return
      try {
        if (pending === undefined) {
          const params = checkedParams(request)
          csr = params.csr
          const { challenge, attestation } = this.#deps.verifier.begin(params.payload)
          pending = attestation
          call.write({ challenge })
          return
        }
        answered = true
        const result = this.#deps.verifier.finish(pending, request.challenge_response ?? Buffer.alloc(0))
        if (this.#deps.isBanned(result.agentId)) throw new Refusal(status.PERMISSION_DENIED, 'banned', 'failed to attest: agent is banned')
        this.#issue(result, csr as Buffer).then(svid => {
          if (done) return
          call.write({ result: { svid: { cert_chain: svid.chain, id: idMessage(result.agentId), expires_at: Math.floor(svid.expiresAt.getTime() / 1000), hint: '' }, reattestable: result.canReattest } })
          this.#deps.logger.info({ agentId: result.agentId.toString(), address, serial: svid.serial }, 'fleet: agent attestation completed')
          finish()
        }, (err: unknown) => { finish(asRefusal(err)) })
      } catch (err) {
        finish(asRefusal(err))
      }
    })
    call.on('error', () => { finish() })
    // A device may close its side once it has answered (SPIRE reads no further); before that, the stream ended early.
    call.on('end', () => { if (!answered) finish(new Refusal(status.INVALID_ARGUMENT, 'malformed', 'failed to receive request from stream: the stream ended')) })
    call.on('cancelled', () => { finish() })
  }

  /** Counts an attestation starting from `address`; over a limit, the refusal instead. */
  #admit (address: string): Refusal | undefined {
    const { perAddress, total } = this.#deps.limits
    const fromAddress = this.#inProgress.get(address) ?? 0
    if (fromAddress >= perAddress) return new Refusal(status.RESOURCE_EXHAUSTED, 'busy', 'too many attestations in progress from this address')
    if (this.#total >= total) return new Refusal(status.RESOURCE_EXHAUSTED, 'busy', 'too many attestations in progress')
    this.#inProgress.set(address, fromAddress + 1)
    this.#total++
    return undefined
  }

  #release (address: string): void {
    const left = (this.#inProgress.get(address) ?? 1) - 1
    if (left === 0) this.#inProgress.delete(address)
    else this.#inProgress.set(address, left)
    this.#total--
  }

  async #issue (result: X509popResult, csr: Buffer): Promise<IssuedAgentSvid> {
    let svid: IssuedAgentSvid
    try {
      svid = await this.#deps.signAgentSvid(result.agentId, csr)
    } catch (err) {
      throw new Refusal(status.INVALID_ARGUMENT, 'csr', `failed to parse CSR: ${(err as Error).message}`)
    }
    this.#deps.record(result, svid)
    return svid
  }

  #refused (refusal: Refusal, address: string): void {
    this.#deps.refusals.refused(address, refusal.reason, { code: status[refusal.code], message: refusal.message })
  }
}

/** SPIRE's validateAttestAgentParams, then the attestor: x509pop is the one this server runs. */
function checkedParams (request: AttestAgentRequest): { payload: Buffer, csr: Buffer } {
  const malformed = (why: string): Refusal => new Refusal(status.INVALID_ARGUMENT, 'malformed', `malformed param: ${why}`)
  const params = request.params
  if (params === undefined || params === null) throw malformed('missing params')
  if (params.data === undefined || params.data === null) throw malformed('missing attestation data')
  if (params.params === undefined || params.params === null) throw malformed('missing X509-SVID parameters')
  if (params.params.csr.length === 0) throw malformed('missing CSR')
  if (params.data.type === '') throw malformed('missing attestation data type')
  if (params.data.payload.length === 0) throw malformed('missing attestation data payload')
  if (params.data.type !== X509POP_ATTESTOR) {
    throw new Refusal(status.FAILED_PRECONDITION, 'unknown_attestor', `error getting node attestor: could not find node attestor type "${params.data.type}"`)
  }
  return { payload: params.data.payload, csr: params.params.csr }
}

function asRefusal (err: unknown): Refusal {
  if (err instanceof Refusal) return err
  if (err instanceof X509popRefusal) return new Refusal(err.grpcCode, 'x509pop', err.message)
  return new Refusal(status.INTERNAL, 'internal', `failed to attest: ${(err as Error).message}`)
}

function idMessage (id: SpiffeId): { trust_domain: string, path: string } {
  return { trust_domain: id.trustDomain.name, path: id.path }
}
