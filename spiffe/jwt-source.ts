/**
 * JwtSource: JWT-SVIDs of this workload, cached per audience, and the JWT bundles to validate others' tokens locally
 * (SPIFFE_Workload_API.md §6). WorkloadClient has no FetchJWTBundles watch, so bundles are fetched and cached for a
 * short while; failed fetches back off, and meanwhile the last bundles fetched are used, as X509Source does.
 */
import { decodeJwt } from 'jose'
import type { JWTPayload } from 'jose'
import { Backoff } from './backoff'
import type { BackoffOptions } from './backoff'
import { BundleSet } from './bundle-set'
import { validateJwtSvid } from './jwt-svid'
import type { JwtSvid } from './jwt-svid'
import { SpiffeBundle } from './spiffe-bundle'
import { sourceClosed } from './source-errors'
import { WorkloadApiError, WorkloadClient } from './workload-client'

export interface JwtSourceOptions {
  /** The Workload API address as workloadEndpoint takes it; $SPIFFE_ENDPOINT_SOCKET by default. */
  address?: string
  /** Delays before fetching bundles again after a failed fetch. */
  backoff?: BackoffOptions
  /** How long fetched bundles are used before they are fetched again, in ms; 10 000 by default. */
  bundleRefreshMs?: number
}

interface CachedToken {
  token: Promise<string>
  /** Until when the token is handed out again (ms since the epoch); Infinity while it is being fetched. */
  refreshAt: number
}

export class JwtSource {
  readonly #client: WorkloadClient
  readonly #backoff: Backoff
  readonly #refreshMs: number
  readonly #tokens = new Map<string, CachedToken>()
  #bundles?: BundleSet
  #bundlesAt = 0
  #bundlesFetch?: Promise<BundleSet>
  #lastFailure?: { err: Error, retryAt: number }
  #closed = false

  /** An invalid address throws ERR_WORKLOAD_API_ADDRESS here. */
  constructor (options: JwtSourceOptions = {}) {
    const { bundleRefreshMs = 10_000 } = options
    if (!Number.isFinite(bundleRefreshMs) || bundleRefreshMs < 0) throw new TypeError('bundleRefreshMs must be a number of ms, 0 or more')
    this.#refreshMs = bundleRefreshMs
    this.#backoff = new Backoff(options.backoff)
    this.#client = new WorkloadClient(options.address)
  }

  get address (): string {
    return this.#client.address
  }

  /**
   * A JWT-SVID for `audience`: the default identity's, or `spiffeId`'s. A token is reused until half its lifetime
   * has passed, so a caller sending one per request does not ask the agent each time and never sends a nearly
   * expired one.
   */
  async fetchJwtSvid (audience: string[] | string, spiffeId?: string): Promise<string> {
    this.#checkOpen()
    const audiences = typeof audience === 'string' ? [audience] : [...new Set(audience)].sort()
    const key = JSON.stringify([audiences, spiffeId ?? ''])
    const now = Date.now()
    const cached = this.#tokens.get(key)
    if (cached !== undefined && now < cached.refreshAt) return await cached.token
    this.#dropExpiredTokens(now)
    const entry: CachedToken = { token: this.#fetchToken(audiences, spiffeId), refreshAt: Infinity }
    this.#tokens.set(key, entry)
    try {
      const token = await entry.token
      entry.refreshAt = halfLife(token, now)
      return token
    } catch (err) {
      this.#tokens.delete(key)
      throw err
    }
  }

  /** The JWT bundles of every trust domain this workload may trust. */
  async bundles (): Promise<BundleSet> {
    this.#checkOpen()
    const now = Date.now()
    if (this.#bundles !== undefined && now - this.#bundlesAt < this.#refreshMs) return this.#bundles
    // While backing off, the last bundles fetched keep serving; without any, the failure is the answer.
    if (this.#lastFailure !== undefined && now < this.#lastFailure.retryAt) {
      if (this.#bundles !== undefined) return this.#bundles
      throw this.#lastFailure.err
    }
    this.#bundlesFetch ??= this.#fetchBundles().finally(() => { this.#bundlesFetch = undefined })
    try {
      return await this.#bundlesFetch
    } catch (err) {
      if (this.#bundles !== undefined) return this.#bundles
      throw err
    }
  }

  /** Validates another workload's JWT-SVID locally, against the bundle of its own trust domain. */
  async validate (token: string, audience: string | string[]): Promise<JwtSvid> {
    return await validateJwtSvid(token, await this.bundles(), audience)
  }

  /** Releases the connection; later calls reject with ERR_SOURCE_CLOSED. Idempotent. */
  close (): void {
    if (this.#closed) return
    this.#closed = true
    this.#tokens.clear()
    this.#client.close()
  }

  #checkOpen (): void {
    if (this.#closed) throw sourceClosed('JwtSource')
  }

  async #fetchToken (audience: string[], spiffeId?: string): Promise<string> {
    const svids = await this.#client.fetchJwtSvid(audience, spiffeId)
    // API §6.2.1: the first is the default identity's; with spiffeId given, it is that identity's only.
    if (svids.length === 0) throw new WorkloadApiError('ERR_WORKLOAD_API_RESPONSE_INVALID', `the Workload API at ${this.address} sent no JWT-SVID`)
    return svids[0].token
  }

  async #fetchBundles (): Promise<BundleSet> {
    try {
      const fetched = await this.#client.fetchJwtBundles()
      const bundles = new BundleSet([...fetched.values()].map(jwt => new SpiffeBundle(jwt.trustDomain, { jwt })))
      this.#bundles = bundles
      this.#bundlesAt = Date.now()
      this.#lastFailure = undefined
      this.#backoff.reset()
      return bundles
    } catch (err) {
      this.#lastFailure = { err: err as Error, retryAt: Date.now() + this.#backoff.next() }
      throw err
    }
  }

  /** Forgets tokens past their refresh time, so caching per audience cannot grow without bound. */
  #dropExpiredTokens (now: number): void {
    for (const [key, cached] of this.#tokens) if (now >= cached.refreshAt) this.#tokens.delete(key)
  }
}

/**
 * When a token is half-way through its life, read from its own `iat`/`exp` without verifying: it comes straight
 * from our agent. Without `iat`, its lifetime counts from `fetchedAt`; without a readable `exp`, it is not reused.
 */
function halfLife (token: string, fetchedAt: number): number {
  let claims: JWTPayload
  try {
    claims = decodeJwt(token)
  } catch {
    return fetchedAt
  }
  if (typeof claims.exp !== 'number') return fetchedAt
  const issuedAt = typeof claims.iat === 'number' ? claims.iat * 1000 : fetchedAt
  return issuedAt + (claims.exp * 1000 - issuedAt) / 2
}
