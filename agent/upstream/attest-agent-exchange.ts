/**
 * One AttestAgent exchange with a SPIRE server (spire-compat.md §3.1; SPIRE pkg/server/api/agent/v1/service.go):
 * the params (attestation data and the CSR), then as many challenge → challenge_response rounds as the server's
 * attestor asks for, then the result, after which the server ends the stream. Any other order is the server breaking
 * the protocol; a status from the server keeps SPIRE's own message (e.g. "certificate verification failed: …").
 */
import { status } from '@grpc/grpc-js'
import type { Client, ClientDuplexStream, ServiceError, StatusObject } from '@grpc/grpc-js'
import { UpstreamError } from './errors'
import type { NodeAttestor } from './node-attestor'

/** types.X509SVID as it arrives (proto-loader, keepCase). */
export interface X509SvidMessage {
  cert_chain: Buffer[]
  id?: { trust_domain: string, path: string } | null
  expires_at: number
}

export interface AttestAgentResult {
  svid: X509SvidMessage
  reattestable: boolean
}

interface AttestAgentResponse {
  step?: 'result' | 'challenge'
  result?: { svid?: X509SvidMessage | null, reattestable: boolean }
  challenge?: Buffer
}

type AttestAgentCall = ClientDuplexStream<object, AttestAgentResponse>

/** More rounds than any SPIRE attestor asks for (x509pop: one); a server that keeps asking is broken or hostile. */
const MAX_CHALLENGES = 8

/** Runs the exchange on a client of the Agent service (proto/agent-attest.proto) before `deadline`. */
export async function exchangeAttestAgent (
  client: Client, attestor: NodeAttestor, csr: Buffer, deadline: Date, address: string
): Promise<AttestAgentResult> {
  const call = (client as unknown as { AttestAgent: (options: { deadline: Date }) => AttestAgentCall }).AttestAgent({ deadline })
  return await new Promise<AttestAgentResult>((resolve, reject) => {
    let result: AttestAgentResult | undefined
    let challenges = 0
    let settled = false
    const fail = (err: UpstreamError): void => {
      if (settled) return
      settled = true
      call.cancel()
      reject(err)
    }
    const broken = (what: string): void => { fail(new UpstreamError('ERR_UPSTREAM_PROTOCOL', `SPIRE server ${address} broke AttestAgent: ${what}`)) }

    call.on('data', (response: AttestAgentResponse) => {
      if (result !== undefined) return broken(`it sent a ${response.step ?? 'message'} after the result`)
      if (response.step === 'challenge' && response.challenge !== undefined) {
        if (++challenges > MAX_CHALLENGES) return broken(`more than ${MAX_CHALLENGES} challenges`)
        try {
          call.write({ challenge_response: attestor.respond(response.challenge) })
        } catch (err) {
          fail(err instanceof UpstreamError ? err : new UpstreamError('ERR_NODE_ATTESTATION_FAILED', `${attestor.type}: ${(err as Error).message}`, { cause: err }))
        }
        return
      }
      const svid = response.result?.svid
      if (response.step !== 'result' || svid === undefined || svid === null) return broken('a response with neither a challenge nor a result with an X509-SVID')
      if (svid.cert_chain.length === 0) return broken('a result whose X509-SVID has no certificate')
      result = { svid, reattestable: response.result?.reattestable === true }
      call.end()
    })
    call.on('error', (err: ServiceError) => { fail(statusError(err, address)) })
    call.on('status', (end: StatusObject) => {
      if (end.code !== status.OK || settled) return
      if (result === undefined) return broken('it ended the stream without a result')
      settled = true
      resolve(result)
    })
    call.write({ params: { data: { type: attestor.type, payload: attestor.payload() }, params: { csr } } })
  })
}

/** A status ending the call, as an UpstreamError; SPIRE's message is kept as it is. */
function statusError (err: ServiceError, address: string): UpstreamError {
  const reason = err.details === '' ? status[err.code] : err.details
  switch (err.code) {
    case status.PERMISSION_DENIED:
      return new UpstreamError('ERR_NODE_ATTESTATION_DENIED', `SPIRE server ${address} refused the attestation: ${reason}`, { cause: err })
    case status.DEADLINE_EXCEEDED:
      return new UpstreamError('ERR_UPSTREAM_TIMEOUT', `SPIRE server ${address} did not finish AttestAgent in time`, { cause: err })
    case status.UNAVAILABLE:
      return new UpstreamError('ERR_UPSTREAM_UNREACHABLE', `SPIRE server ${address} is unreachable: ${reason}`, { cause: err })
    default:
      return new UpstreamError('ERR_NODE_ATTESTATION_FAILED', `SPIRE server ${address} failed the attestation (${status[err.code] ?? err.code}): ${reason}`, { cause: err })
  }
}
