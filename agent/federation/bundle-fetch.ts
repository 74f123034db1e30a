/**
 * Fetching another trust domain's bundle from its bundle endpoint (SPIFFE Federation §5, as SPIRE's bundle client
 * does: pkg/server/bundle/client/client.go): one `GET` over a fresh TLS connection, the endpoint authenticated by the
 * relationship's profile before any byte of the answer is read:
 * - `https_web`: Web PKI (Node's store, or `webCa`) and the URL's host name; a server certificate carrying a SPIFFE
 *   ID is refused, as SPIRE does, since that endpoint should be federated with https_spiffe;
 * - `https_spiffe`: the server's chain verified as an X509-SVID against the latest bundle of the endpoint ID's own
 *   trust domain (§5.2.2, §7.6), and its ID equal to the relationship's endpoint SPIFFE ID; that check replaces the
 *   host name check.
 * The whole fetch has a deadline and the body a size limit: the endpoint belongs to another organisation.
 * Every failure is a BundleFetchError whose `reason` says which step failed.
 */
import { request } from 'node:https'
import type { RequestOptions } from 'node:https'
import { isIP } from 'node:net'
import type { TLSSocket } from 'node:tls'
import type { X509BundleSource } from '../../spiffe/bundle-source'
import type { SpiffeId, TrustDomain } from '../../spiffe/id'
import { SpiffeBundle } from '../../spiffe/spiffe-bundle'
import { peerChainOf, verifyPeerChain } from '../../spiffe/tls-peer'
import { parseCertificateCached } from '../../spiffe/x509-cert-cache'
import type { RelationshipProfile } from '../store'
import { BundleFetchError } from './fetch-errors'
import type { BundleFetchFailure } from './fetch-errors'

export interface FetchTarget {
  readonly trustDomain: TrustDomain
  readonly bundleEndpointUrl: string
  readonly profile: RelationshipProfile
}

export interface BundleFetchOptions {
  /** https_spiffe: the latest X.509 bundle of a trust domain (our own, or a federated one), or undefined when none is held. */
  readonly bundleFor: (trustDomain: TrustDomain) => X509BundleSource | undefined
  /** https_web: the CAs to trust instead of Node's default store (tests only; NODE_EXTRA_CA_CERTS works for operators). */
  readonly webCa?: string | Buffer | Array<string | Buffer>
  /** The whole fetch (connect, TLS, response); 10 s by default. */
  readonly timeoutMs?: number
  /** The largest body accepted; 1 MiB by default. */
  readonly maxBytes?: number
}

const DEFAULT_TIMEOUT_MS = 10_000
const DEFAULT_MAX_BYTES = 1024 * 1024
/** A refusal's body is quoted in the error, as SPIRE does, cut to this many characters. */
const STATUS_BODY_CHARS = 200
/** Enough bytes for STATUS_BODY_CHARS characters of UTF-8; no more of a refusal's body is read. */
const STATUS_BODY_BYTES = STATUS_BODY_CHARS * 4

type Fail = (reason: BundleFetchFailure, detail: string, cause?: unknown) => BundleFetchError

/** How the endpoint is authenticated: TLS options, and a check of the established connection (undefined: accepted). */
interface Authenticator {
  readonly tls: RequestOptions
  readonly check: (socket: TLSSocket) => BundleFetchError | undefined
}

/** The bundle served at the target's URL, parsed as `target.trustDomain`'s; rejects with BundleFetchError. */
export async function fetchBundle (target: FetchTarget, options: BundleFetchOptions): Promise<SpiffeBundle> {
  const fail: Fail = (reason, detail, cause) => new BundleFetchError(target.bundleEndpointUrl, reason, detail, cause === undefined ? undefined : { cause })
  let url: URL
  try {
    url = new URL(target.bundleEndpointUrl)
  } catch (err) {
    throw fail('connect', 'not a URL', err)
  }
  if (url.protocol !== 'https:') throw fail('connect', 'a bundle endpoint is reached over https only')
  const auth = target.profile.kind === 'https_spiffe' ? spiffeAuthenticator(target.profile.endpointSpiffeId, options, fail) : webAuthenticator(options, fail)
  const body = await download(url, auth, options.timeoutMs ?? DEFAULT_TIMEOUT_MS, options.maxBytes ?? DEFAULT_MAX_BYTES, fail)
  let bundle: SpiffeBundle
  try {
    bundle = SpiffeBundle.parse(target.trustDomain, body.toString('utf8'))
  } catch (err) {
    throw fail('invalid_bundle', (err as Error).message, err)
  }
  // An empty bundle would leave nothing to verify with (and, stored, nothing to fetch the next one with).
  if (bundle.x509.authorities.length === 0 && bundle.jwt.size === 0) throw fail('invalid_bundle', 'the bundle holds no X.509 authority and no JWT key')
  return bundle
}

function spiffeAuthenticator (endpointId: SpiffeId, options: BundleFetchOptions, fail: Fail): Authenticator {
  const td = endpointId.trustDomain
  // Only the endpoint's own trust domain's authorities: a source holding several is never consulted for another.
  const bundle = options.bundleFor(td)?.getX509Bundle(td)
  if (bundle === undefined || bundle.authorities.length === 0) {
    throw fail('no_endpoint_bundle', `no bundle held for ${td.name} to authenticate its endpoint: give the relationship a bootstrap bundle`)
  }
  return {
    // OpenSSL's verdict and the host name check are replaced by check(), which runs before the answer is read.
    tls: { rejectUnauthorized: false, checkServerIdentity: () => undefined },
    check: socket => {
      try {
        verifyPeerChain(peerChainOf(socket.getPeerCertificate(true)), bundle, endpointId)
        return undefined
      } catch (err) {
        const code = (err as { code?: unknown }).code
        // NO_BUNDLE: the SVID names another trust domain than the endpoint ID's, so it cannot be that ID.
        if (code === 'ERR_X509_SVID_ID_MISMATCH' || code === 'ERR_X509_SVID_NO_BUNDLE') {
          return fail('endpoint_id', `the endpoint is not ${endpointId.toString()}: ${(err as Error).message}`, err)
        }
        return fail('tls', `the endpoint's certificate is not an X509-SVID of ${td.name}: ${(err as Error).message}`, err)
      }
    }
  }
}

function webAuthenticator (options: BundleFetchOptions, fail: Fail): Authenticator {
  return {
    tls: { rejectUnauthorized: true, ...(options.webCa === undefined ? {} : { ca: options.webCa }) },
    check: socket => {
      // Reached only once Node verified the chain and the host name (rejectUnauthorized).
      const leaf = socket.getPeerX509Certificate()
      let uris: readonly string[] = []
      try {
        if (leaf !== undefined) uris = parseCertificateCached(leaf).uris
      } catch (err) {
        return fail('tls', `the server certificate cannot be read: ${(err as Error).message}`, err)
      }
      const spiffeId = uris.find(uri => /^spiffe:/i.test(uri))
      if (spiffeId === undefined) return undefined
      return fail('tls', `failed to authenticate bundle endpoint using web authentication but the server certificate contains SPIFFE ID ${JSON.stringify(spiffeId)}: maybe use https_spiffe instead of https_web`)
    }
  }
}

/** The body of a 200 answer, after `auth` accepted the connection; rejects with BundleFetchError, once. */
async function download (url: URL, auth: Authenticator, timeoutMs: number, maxBytes: number, fail: Fail): Promise<Buffer> {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1')
  return await new Promise<Buffer>((resolve, reject) => {
    // Which step an error of the socket belongs to.
    let stage: 'connect' | 'tls' | 'response' = 'connect'
    let settled = false
    const settle = (err: BundleFetchError | undefined, body?: Buffer): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      req.destroy()
      if (err === undefined) resolve(body as Buffer)
      else reject(err)
    }
    const timer = setTimeout(() => { settle(fail('timeout', `no complete answer within ${timeoutMs} ms`)) }, timeoutMs)
    const req = request({
      host,
      port: url.port === '' ? 443 : Number(url.port),
      path: `${url.pathname}${url.search}`,
      method: 'GET',
      headers: { accept: 'application/json' },
      agent: false,
      ...(isIP(host) === 0 ? { servername: host } : {}),
      ...auth.tls
    }, res => {
      const status = res.statusCode ?? 0
      const ok = status === 200
      const declared = Number(res.headers['content-length'])
      if (ok && declared > maxBytes) { settle(fail('too_large', `the body is ${declared} bytes, over the limit of ${maxBytes}`)); return }
      const chunks: Buffer[] = []
      let size = 0
      const refused = (): BundleFetchError => {
        const text = Buffer.concat(chunks).toString('utf8').slice(0, STATUS_BODY_CHARS)
        return fail('status', `unexpected status ${status} fetching bundle: ${text}`)
      }
      res.on('data', (chunk: Buffer) => {
        chunks.push(chunk)
        size += chunk.length
        if (!ok && size >= STATUS_BODY_BYTES) settle(refused())
        else if (size > maxBytes) settle(fail('too_large', `the body exceeds the limit of ${maxBytes} bytes`))
      })
      res.on('end', () => { settle(ok ? undefined : refused(), Buffer.concat(chunks)) })
      // A refusal is reported as such, however its body ends.
      res.on('error', err => { settle(ok ? fail('connect', `the connection failed while reading the body: ${err.message}`, err) : refused()) })
      res.on('close', () => { if (!res.complete) settle(ok ? fail('connect', 'the connection closed before the body ended') : refused()) })
    })
    req.on('socket', socket => {
      socket.once('connect', () => { stage = 'tls' })
      socket.once('secureConnect', () => {
        const refused = auth.check(socket as TLSSocket)
        if (refused === undefined) stage = 'response'
        else settle(refused)
      })
    })
    req.on('error', err => { settle(socketFailure(stage, err, `${host}:${url.port === '' ? 443 : url.port}`, fail)) })
    req.end()
  })
}

function socketFailure (stage: 'connect' | 'tls' | 'response', err: Error, address: string, fail: Fail): BundleFetchError {
  switch (stage) {
    case 'connect': return fail('connect', `cannot connect to ${address}: ${err.message}`, err)
    case 'tls': return fail('tls', `TLS with ${address} failed: ${err.message}`, err)
    case 'response': return fail('connect', `the connection failed before a complete answer: ${err.message}`, err)
  }
}
