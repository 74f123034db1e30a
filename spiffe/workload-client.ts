/**
 * A thin SPIFFE Workload API client (https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE_Workload_API.md):
 * one method per RPC, answers parsed into our types, failures as WorkloadApiErrors. Reconnecting and caching belong
 * to the sources built on it.
 */
import { Client, credentials, Metadata, status } from '@grpc/grpc-js'
import type { CallOptions, ClientReadableStream, ServiceError } from '@grpc/grpc-js'
import type { JwtBundle } from './jwt-bundle'
import type { X509Bundle } from './x509-bundle'
import { workloadEndpoint } from './workload-endpoint'
import { WorkloadApiError, workloadApiError } from './workload-errors'
import { parseJwtBundles, parseX509Bundles, parseX509SvidResponse } from './workload-messages'
import type { JwtBundlesResponseMessage, JwtSvidResponseMessage, X509BundlesResponseMessage, X509SvidResponseMessage, X509SvidResponseParsed } from './workload-messages'
import { WORKLOAD_API_HEADER, workloadApiMethods } from './workload-proto'
import { fromStruct } from './workload-struct'
import { watchStream } from './stream-watch'
import type { StructMessage } from './workload-struct'

export { workloadEndpoint, ENDPOINT_SOCKET_ENV } from './workload-endpoint'
export { WorkloadApiError } from './workload-errors'
export type { WorkloadApiErrorCode } from './workload-errors'
export type { X509Svid, X509SvidResponseParsed } from './workload-messages'

export interface JwtSvidParsed { spiffeId: string, token: string, hint: string }

/** One-shot calls give up after this long, so a hung agent can't hang its caller forever. */
const DEFAULT_TIMEOUT_MS = 30_000

type StreamMethod = 'FetchX509SVID' | 'FetchX509Bundles' | 'FetchJWTBundles'

export class WorkloadClient {
  /** The address as given (or from the environment), for error messages. */
  readonly address: string
  readonly #client: Client
  readonly #timeoutMs: number

  /** `address` as workloadEndpoint takes it; defaults to $SPIFFE_ENDPOINT_SOCKET. */
  constructor (address?: string, options: { timeoutMs?: number } = {}) {
    const target = workloadEndpoint(address)
    this.address = address ?? target
    this.#client = new Client(target, credentials.createInsecure())
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
  }

  /** The current X509-SVIDs: the stream's first message; the stream is then cancelled. */
  async fetchX509Svid (): Promise<X509SvidResponseParsed> {
    return parseX509SvidResponse(await this.#first<X509SvidResponseMessage>('FetchX509SVID'))
  }

  /**
   * Every X509-SVID update (each one the full state, API §5.2.1) until the returned function is called. A message
   * that does not parse goes to onError and the watch continues; a stream failure or end goes to onError once.
   */
  watchX509Svids (onUpdate: (response: X509SvidResponseParsed) => void, onError: (err: Error) => void): () => void {
    return watchStream(this.#stream<X509SvidResponseMessage>('FetchX509SVID', {}), {
      parse: parseX509SvidResponse,
      onUpdate,
      onError,
      failed: err => workloadApiError(err, this.address),
      ended: () => new WorkloadApiError('ERR_WORKLOAD_API_UNAVAILABLE', `the Workload API at ${this.address} closed the X509-SVID stream`)
    })
  }

  /** The X.509 bundles of every trust domain the caller may trust, by trust domain name. */
  async fetchX509Bundles (): Promise<Map<string, X509Bundle>> {
    return parseX509Bundles(await this.#first<X509BundlesResponseMessage>('FetchX509Bundles'))
  }

  /** JWT-SVIDs for `audience` (at least one): all of the caller's, or only `spiffeId`'s. */
  async fetchJwtSvid (audience: string[], spiffeId?: string): Promise<JwtSvidParsed[]> {
    if (audience.length === 0 || audience.some(a => a === '')) {
      throw new WorkloadApiError('ERR_WORKLOAD_API_INVALID_REQUEST', 'a JWT-SVID needs at least one non-empty audience')
    }
    const response = await this.#unary<JwtSvidResponseMessage>('FetchJWTSVID', { audience, spiffe_id: spiffeId ?? '' })
    return response.svids.map(svid => ({ spiffeId: svid.spiffe_id, token: svid.svid, hint: svid.hint }))
  }

  /** The JWT bundles of every trust domain the caller may trust, by trust domain name. */
  async fetchJwtBundles (): Promise<Map<string, JwtBundle>> {
    return parseJwtBundles(await this.#first<JwtBundlesResponseMessage>('FetchJWTBundles'))
  }

  /** Has the agent validate a JWT-SVID for one audience; an invalid token is ERR_WORKLOAD_API_INVALID_REQUEST. */
  async validateJwtSvid (token: string, audience: string): Promise<{ spiffeId: string, claims: Record<string, unknown> }> {
    const response = await this.#unary<{ spiffe_id: string, claims: StructMessage | null }>('ValidateJWTSVID', { audience, svid: token })
    return { spiffeId: response.spiffe_id, claims: fromStruct(response.claims) }
  }

  close (): void {
    this.#client.close()
  }

  /** API §4: every request carries `workload.spiffe.io: true`; servers refuse others with INVALID_ARGUMENT. */
  #metadata (): Metadata {
    const metadata = new Metadata()
    metadata.set(WORKLOAD_API_HEADER, 'true')
    return metadata
  }

  #options (): CallOptions {
    return { deadline: Date.now() + this.#timeoutMs }
  }

  #stream<T> (method: StreamMethod, options: CallOptions): ClientReadableStream<T> {
    const m = workloadApiMethods()[method]
    return this.#client.makeServerStreamRequest(m.path, m.requestSerialize, m.responseDeserialize as (b: Buffer) => T, {}, this.#metadata(), options)
  }

  /** The first message of a stream; the stream is cancelled once it is in. */
  async #first<T> (method: StreamMethod): Promise<T> {
    const call = this.#stream<T>(method, this.#options())
    return await new Promise<T>((resolve, reject) => {
      call.once('data', (message: T) => {
        resolve(message)
        call.cancel()
      })
      call.on('error', (err: ServiceError) => {
        if (err.code !== status.CANCELLED) reject(workloadApiError(err, this.address))
      })
      call.on('end', () => reject(new WorkloadApiError('ERR_WORKLOAD_API_FAILED', `the Workload API at ${this.address} ended ${method} without a message`)))
    })
  }

  async #unary<T> (method: 'FetchJWTSVID' | 'ValidateJWTSVID', request: object): Promise<T> {
    const m = workloadApiMethods()[method]
    return await new Promise<T>((resolve, reject) => {
      this.#client.makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize as (b: Buffer) => T, request, this.#metadata(), this.#options(), (err, response) => {
        if (err !== null || response === undefined) reject(workloadApiError(err, this.address))
        else resolve(response)
      })
    })
  }
}
