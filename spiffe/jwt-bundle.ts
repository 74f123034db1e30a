/**
 * The JWT authorities of one trust domain: public keys by key ID, read from a JWK Set
 * (SPIFFE_Trust_Domain_and_Bundle.md §4; JWT-SVID.md §4 names the key by the token's `kid`).
 */
import { createPublicKey } from 'node:crypto'
import type { JWK } from 'jose'
import { BundleError } from './errors'
import type { JwtBundleSource } from './bundle-source'
import type { TrustDomain } from './id'

/** Bundle §4.2.2: the `use` of a JWT authority. */
const JWT_SVID_USE = 'jwt-svid'

/**
 * The public members we keep for each supported key type (RFC 7518 §6.2.1, §6.3.1). Everything else a bundle key
 * carries (`use`, `alg`, `x5c`, …) is dropped, so a stored key is exactly the material that verifies signatures.
 */
const PUBLIC_MEMBERS: ReadonlyMap<string, readonly string[]> = new Map([['EC', ['crv', 'x', 'y']], ['RSA', ['n', 'e']]])

/** The curves of JWT-SVID's ES256/ES384/ES512 (JWT-SVID.md §2.1). */
const SUPPORTED_CURVES = new Set(['P-256', 'P-384', 'P-521'])

/** RFC 7518 §6.2.2, §6.3.2 and §6.4: members that only private or secret keys hold. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'priv']

/** RFC 7518 §3.3 requires RSA keys of 2048 bits or more; jose refuses smaller ones at verification. */
const MIN_RSA_BITS = 2048

export class JwtBundle implements JwtBundleSource {
  readonly trustDomain: TrustDomain
  readonly #keys = new Map<string, JWK>()

  constructor (trustDomain: TrustDomain) {
    this.trustDomain = trustDomain
  }

  /**
   * Reads a JWK Set (JSON text or its parsed object). Keys whose `use` is another SVID type's and keys of a type
   * JWT-SVIDs cannot use are skipped (bundle §4.1.3, §4.2.1–4.2.2); any other defect rejects the whole bundle.
   */
  static fromJwks (trustDomain: TrustDomain, jwks: string | object): JwtBundle {
    const keys = jwkSetKeys(jwks)
    const bundle = new JwtBundle(trustDomain)
    keys.forEach((entry, index) => {
      const where = `bundle key ${index}`
      const key = jwtAuthority(entry, where)
      if (key === undefined) return
      const kid = (entry as { kid?: unknown }).kid
      if (typeof kid !== 'string' || kid.length === 0) throw invalid(`${where} has no "kid"; JWT authorities need one`)
      if (bundle.#keys.has(kid)) throw invalid(`${where} repeats the key ID ${JSON.stringify(kid)}`)
      bundle.#keys.set(kid, key)
    })
    return bundle
  }

  /** The key with this key ID, or undefined. */
  findKey (kid: string): JWK | undefined {
    return this.#keys.get(kid)
  }

  /** All keys by key ID. */
  get keys (): ReadonlyMap<string, JWK> {
    return this.#keys
  }

  get size (): number {
    return this.#keys.size
  }

  /** Adds a public key under a key ID, replacing any key already held under that ID. */
  addKey (kid: string, jwk: JWK): void {
    if (typeof kid !== 'string' || kid.length === 0) throw invalid('a JWT authority needs a non-empty key ID')
    const key = jwtAuthority(jwk, `key ${JSON.stringify(kid)}`)
    if (key === undefined) {
      throw invalid(`key ${JSON.stringify(kid)} is not a JWT authority (its "use" or "kty" is not one)`)
    }
    this.#keys.set(kid, key)
  }

  /** Removes the key with this key ID; returns whether there was one. */
  removeKey (kid: string): boolean {
    return this.#keys.delete(kid)
  }

  getJwtBundle (trustDomain: TrustDomain): JwtBundle | undefined {
    return this.trustDomain.equals(trustDomain) ? this : undefined
  }

  /** The bundle as a JWK Set, each key marked as a JWT authority with its key ID (bundle §4.2). */
  toJwks (): { keys: Array<JWK & { use: string, kid: string }> } {
    return { keys: [...this.#keys].map(([kid, key]) => ({ use: JWT_SVID_USE, kid, ...key })) }
  }
}

function invalid (message: string, cause?: unknown): BundleError {
  return new BundleError('ERR_BUNDLE_INVALID', message, { cause })
}

/** The `keys` array of a JWK Set; bundle §4.1.3 makes it mandatory (it may be empty). */
function jwkSetKeys (jwks: string | object): unknown[] {
  let document: unknown = jwks
  if (typeof jwks === 'string') {
    try {
      document = JSON.parse(jwks)
    } catch (err) {
      throw invalid(`JWT bundle is not valid JSON: ${(err as Error).message}`, err)
    }
  }
  const keys = isObject(document) ? document.keys : undefined
  if (!Array.isArray(keys)) throw invalid('JWT bundle must be a JWK Set: an object with a "keys" array')
  return keys
}

/**
 * The public part of one bundle key, frozen; undefined when the key is not for JWT-SVIDs.
 * Throws ERR_BUNDLE_INVALID, naming `where`, for a key that claims to be a JWT authority but cannot be one.
 */
function jwtAuthority (entry: unknown, where: string): JWK | undefined {
  if (!isObject(entry)) throw invalid(`${where} is not a JSON object`)
  // Bundle §4.2.2: another `use` belongs to another SVID type (e.g. x509-svid) and is ignored here.
  if (entry.use !== undefined && entry.use !== JWT_SVID_USE) return undefined
  if (PRIVATE_MEMBERS.some(member => entry[member] !== undefined)) throw invalid(`${where} holds private key material`)
  if (typeof entry.kty !== 'string') throw invalid(`${where} has no "kty"`)
  const members = PUBLIC_MEMBERS.get(entry.kty)
  // Bundle §4.2.1: unknown key types are ignored; so are curves that no JWT-SVID algorithm uses.
  if (members === undefined || (entry.kty === 'EC' && !SUPPORTED_CURVES.has(entry.crv as string))) return undefined
  const key = Object.fromEntries([['kty', entry.kty], ...members.map(member => [member, entry[member]])]) as JWK
  checkUsable(key, where)
  return Object.freeze(key)
}

/** Imports the key as Node would to verify with it, so a broken key fails when the bundle is read, not per token. */
function checkUsable (jwk: JWK, where: string): void {
  let bits
  try {
    bits = createPublicKey({ key: jwk, format: 'jwk' }).asymmetricKeyDetails?.modulusLength ?? 0
  } catch (err) {
    throw invalid(`${where} is not a usable ${jwk.kty} public key: ${(err as Error).message}`, err)
  }
  if (jwk.kty === 'RSA' && bits < MIN_RSA_BITS) {
    throw invalid(`${where} is a ${bits}-bit RSA key; at least ${MIN_RSA_BITS} bits are required`)
  }
}

function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
