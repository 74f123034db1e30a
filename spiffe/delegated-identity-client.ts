/**
 * A client of SPIRE's Delegated Identity API (spire.api.agent.delegatedidentity.v1.DelegatedIdentity), served on an
 * agent's admin socket to the delegates it authorizes: a node proxy obtains the X509-SVIDs (with keys), JWT-SVIDs
 * and bundles of OTHER workloads, named by PID or selectors. One method per RPC, every message parsed and checked into
 * the Workload API client's types where they agree, failures as DelegatedIdentityApiErrors naming the reason. It also
 * owns the one SubscribeToX509Bundles stream all DelegatedX509Sources of this client share (`x509Bundles`).
 */
import { Client, connectivityState, credentials } from '@grpc/grpc-js'
import type { ClientReadableStream } from '@grpc/grpc-js'
import type { BackoffOptions } from './backoff'
import { clientClosed, DelegatedIdentityApiError, delegatedIdentityApiError } from './delegated-identity-errors'
import type { DelegatedIdentityRpc } from './delegated-identity-errors'
import { delegatedIdentityEndpoint } from './delegated-identity-endpoint'
import { parseJwtBundlesResponse, parseJwtSvidsResponse, parseX509BundlesResponse, parseX509SvidsResponse } from './delegated-identity-messages'
import type { DelegatedJwtSvid, DelegatedX509SvidUpdate, JwtBundlesResponseMessage, JwtSvidsResponseMessage, X509BundlesResponseMessage, X509SvidsResponseMessage } from './delegated-identity-messages'
import { delegatedIdentityMethods } from './delegated-identity-proto'
import { workloadRequestFields } from './delegated-workload'
import type { DelegatedWorkload } from './delegated-workload'
import type { JwtBundle } from './jwt-bundle'
import { SharedX509Bundles } from './shared-x509-bundles'
import { watchStream } from './stream-watch'
import type { X509Bundle } from './x509-bundle'

export interface DelegatedIdentityClientOptions {
  /** How long FetchJWTSVIDs may take, in ms; 30 000 by default. */
  timeoutMs?: number
  /**
   * The largest message accepted, in bytes; 20 MiB by default, as Cilium sets it: the bundles of every federated
   * trust domain come in one message, well past gRPC's 4 MiB default on a large federation.
   */
  maxReceiveMessageBytes?: number
  /** Delays between reconnections of the shared bundle stream. */
  backoff?: BackoffOptions
}

export { DelegatedIdentityApiError } from './delegated-identity-errors'
export type { DelegatedIdentityApiErrorCode } from './delegated-identity-errors'
export { delegatedIdentityEndpoint, ADMIN_ENDPOINT_SOCKET_ENV } from './delegated-identity-endpoint'
export type { DelegatedWorkload, Selector } from './delegated-workload'
export type { DelegatedJwtSvid, DelegatedX509Svid, DelegatedX509SvidUpdate } from './delegated-identity-messages'

const DEFAULT_TIMEOUT_MS = 30_000
const DEFAULT_MAX_RECEIVE_BYTES = 20 * 1024 * 1024

export class DelegatedIdentityClient {
  /** The address as given (or from the environment), for messages. */
  readonly address: string
  /** The one SubscribeToX509Bundles stream shared by every DelegatedX509Source of this client. */
  readonly x509Bundles: SharedX509Bundles
  readonly #target: string
  readonly #timeoutMs: number
  readonly #channelOptions: Record<string, number>
  #grpc: Client
  #closed = false

  /** `address` as delegatedIdentityEndpoint takes it; $SPIRE_ADMIN_ENDPOINT_SOCKET by default. */
  constructor (address?: string, options: DelegatedIdentityClientOptions = {}) {
    this.#target = delegatedIdentityEndpoint(address)
    this.address = address ?? this.#target
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
    this.#channelOptions = {
      'grpc.max_receive_message_length': options.maxReceiveMessageBytes ?? DEFAULT_MAX_RECEIVE_BYTES,
      // Our own channel's connection, not one shared with other clients of the socket: see #channel.
      'grpc.use_local_subchannel_pool': 1
    }
    this.#grpc = this.#newGrpcClient()
    this.x509Bundles = new SharedX509Bundles((onUpdate, onError) => this.subscribeToX509Bundles(onUpdate, onError), options.backoff)
  }

  get closed (): boolean {
    return this.#closed
  }

  /**
   * The X509-SVIDs of `workload`, the whole set on every change, until the returned function is called. An update
   * with no SVIDs means the agent has none for the workload (no entry matches it, or no longer). A message that
   * does not parse goes to onError (code ERR_DELEGATED_IDENTITY_API_RESPONSE_INVALID) and the stream continues; a
   * stream failure or end goes to onError once. An invalid `workload` throws ERR_DELEGATED_IDENTITY_API_INVALID_REQUEST.
   */
  subscribeToX509Svids (workload: DelegatedWorkload, onUpdate: (update: DelegatedX509SvidUpdate) => void, onError: (err: Error) => void): () => void {
    const call = this.#stream<X509SvidsResponseMessage>('SubscribeToX509SVIDs', workloadRequestFields(workload))
    return this.#watch(call, 'SubscribeToX509SVIDs', message => parseX509SvidsResponse(message, this.address), onUpdate, onError)
  }

  /**
   * Every trust domain's X.509 authorities, by trust domain name, the whole set on every change: one stream per call.
   * Sources share `x509Bundles` instead.
   */
  subscribeToX509Bundles (onUpdate: (bundles: Map<string, X509Bundle>) => void, onError: (err: Error) => void): () => void {
    const call = this.#stream<X509BundlesResponseMessage>('SubscribeToX509Bundles', {})
    return this.#watch(call, 'SubscribeToX509Bundles', message => parseX509BundlesResponse(message, this.address), onUpdate, onError)
  }

  /** Every trust domain's JWT authorities, by trust domain name, the whole set on every change. */
  subscribeToJwtBundles (onUpdate: (bundles: Map<string, JwtBundle>) => void, onError: (err: Error) => void): () => void {
    const call = this.#stream<JwtBundlesResponseMessage>('SubscribeToJWTBundles', {})
    return this.#watch(call, 'SubscribeToJWTBundles', message => parseJwtBundlesResponse(message, this.address), onUpdate, onError)
  }

  /**
   * JWT-SVIDs of `workload` for `audience`, one per registration entry matching it. The agent checks the audience
   * (none: ERR_DELEGATED_IDENTITY_API_INVALID_REQUEST "audience must be specified").
   */
  async fetchJwtSvids (workload: DelegatedWorkload, audience: readonly string[]): Promise<DelegatedJwtSvid[]> {
    const request = { ...workloadRequestFields(workload), audience: [...audience] }
    const m = delegatedIdentityMethods().FetchJWTSVIDs
    const grpc = this.#channel()
    const response = await new Promise<JwtSvidsResponseMessage>((resolve, reject) => {
      grpc.makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize as (b: Buffer) => JwtSvidsResponseMessage, request, { deadline: Date.now() + this.#timeoutMs },
        (err, answer) => {
          if (err !== null || answer === undefined) reject(delegatedIdentityApiError(err, this.address, 'FetchJWTSVIDs'))
          else resolve(answer)
        })
    })
    return await parseJwtSvidsResponse(response, this.address)
  }

  /** Closes the shared bundle stream and the connection; later calls throw ERR_DELEGATED_IDENTITY_API_CLOSED. Idempotent. */
  close (): void {
    if (this.#closed) return
    this.#closed = true
    this.x509Bundles.close()
    this.#grpc.close()
  }

  #newGrpcClient (): Client {
    return new Client(this.#target, credentials.createInsecure(), this.#channelOptions)
  }

  /**
   * The gRPC client for a new call. One whose connection failed is replaced: grpc-js would otherwise fail our calls
   * fast until its own backoff (up to 120 s) ends, so the agent's return would go unnoticed far longer than the
   * sources' backoff says. Nothing is lost: a channel in TRANSIENT_FAILURE carries no live call.
   */
  #channel (): Client {
    if (this.#closed) throw clientClosed(this.address)
    if (this.#grpc.getChannel().getConnectivityState(false) === connectivityState.TRANSIENT_FAILURE) {
      this.#grpc.close()
      this.#grpc = this.#newGrpcClient()
    }
    return this.#grpc
  }

  #stream<T> (rpc: DelegatedIdentityRpc, request: object): ClientReadableStream<T> {
    const m = delegatedIdentityMethods()[rpc]
    return this.#channel().makeServerStreamRequest(m.path, m.requestSerialize, m.responseDeserialize as (b: Buffer) => T, request, {})
  }

  #watch<M, P> (call: ClientReadableStream<M>, rpc: DelegatedIdentityRpc, parse: (message: M) => P, onUpdate: (parsed: P) => void, onError: (err: Error) => void): () => void {
    return watchStream(call, {
      parse,
      onUpdate,
      onError,
      failed: err => delegatedIdentityApiError(err, this.address, rpc),
      ended: () => new DelegatedIdentityApiError('ERR_DELEGATED_IDENTITY_API_UNAVAILABLE', `the Delegated Identity API at ${this.address} ended the ${rpc} stream`)
    })
  }
}
