/**
 * The SPIFFE bundle format (SPIFFE_Trust_Domain_and_Bundle.md §4): a JWK Set holding a trust domain's X.509
 * authorities (`use: "x509-svid"`, one DER certificate in `x5c`) and JWT authorities (`use: "jwt-svid"`, with `kid`),
 * plus `spiffe_sequence` and `spiffe_refresh_hint`. This is what federation endpoints serve and `bundle show` prints.
 */
import type { JsonWebKey } from 'node:crypto'
import { BundleError } from './errors'
import type { TrustDomain } from './id'
import type { JwtBundleSource, X509BundleSource } from './bundle-source'
import { X509Bundle } from './x509-bundle'
import { JwtBundle } from './jwt-bundle'

const X509_USE = 'x509-svid'
const JWT_USE = 'jwt-svid'

export interface SpiffeBundleParts {
  readonly x509?: X509Bundle
  readonly jwt?: JwtBundle
  /** spiffe_sequence: increments on every change of the bundle. */
  readonly sequence?: number
  /** spiffe_refresh_hint in seconds: how often federated peers should poll. */
  readonly refreshHintSeconds?: number
}

export interface SpiffeBundleDocument {
  keys: JsonWebKey[]
  spiffe_sequence?: number
  spiffe_refresh_hint?: number
}

export class SpiffeBundle implements X509BundleSource, JwtBundleSource {
  readonly trustDomain: TrustDomain
  readonly x509: X509Bundle
  readonly jwt: JwtBundle
  readonly sequence?: number
  readonly refreshHintSeconds?: number

  constructor (trustDomain: TrustDomain, parts: SpiffeBundleParts = {}) {
    this.trustDomain = trustDomain
    for (const part of [parts.x509, parts.jwt]) {
      if (part !== undefined && !part.trustDomain.equals(trustDomain)) {
        throw new BundleError('ERR_BUNDLE_INVALID', `a bundle of trust domain ${part.trustDomain.name} cannot be part of ${trustDomain.name}'s bundle`)
      }
    }
    this.x509 = parts.x509 ?? new X509Bundle(trustDomain)
    this.jwt = parts.jwt ?? JwtBundle.fromJwks(trustDomain, { keys: [] })
    this.sequence = optionalCount(parts.sequence, 'spiffe_sequence', trustDomain)
    this.refreshHintSeconds = optionalCount(parts.refreshHintSeconds, 'spiffe_refresh_hint', trustDomain)
  }

  /** Reads the SPIFFE bundle format (JSON text or an already parsed object). Keys of unknown `use` are ignored (§4.2). */
  static parse (trustDomain: TrustDomain, input: string | object): SpiffeBundle {
    const fail = (why: string, cause?: unknown): never => {
      throw new BundleError('ERR_BUNDLE_INVALID', `SPIFFE bundle for ${trustDomain.name}: ${why}`, { cause })
    }
    let doc: unknown = input
    if (typeof input === 'string') {
      try {
        doc = JSON.parse(input)
      } catch (err) {
        fail(`not valid JSON (${(err as Error).message})`, err)
      }
    }
    if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as { keys?: unknown }).keys)) fail('a JWK Set with a "keys" array is required')
    const { keys, spiffe_sequence: sequence, spiffe_refresh_hint: refreshHint } = doc as { keys: unknown[], spiffe_sequence?: unknown, spiffe_refresh_hint?: unknown }
    const x509 = new X509Bundle(trustDomain)
    keys.forEach((key, index) => {
      if (typeof key !== 'object' || key === null) fail(`key ${index} is not an object`)
      const { use, x5c } = key as { use?: unknown, x5c?: unknown }
      if (use !== X509_USE) return
      if (!Array.isArray(x5c) || x5c.length !== 1 || typeof x5c[0] !== 'string') {
        fail(`key ${index} (x509-svid) must carry exactly one base64 certificate in "x5c"`)
      }
      try {
        x509.addAuthority(Buffer.from((x5c as string[])[0], 'base64'))
      } catch (err) {
        fail(`key ${index} (x509-svid) holds a malformed certificate (${((err as Error).cause as Error | undefined)?.message ?? (err as Error).message})`, err)
      }
    })
    const jwt = JwtBundle.fromJwks(trustDomain, { keys: keys.filter(key => (key as { use?: unknown }).use === JWT_USE) })
    if (sequence !== undefined && typeof sequence !== 'number') fail('"spiffe_sequence" must be a number')
    if (refreshHint !== undefined && typeof refreshHint !== 'number') fail('"spiffe_refresh_hint" must be a number')
    return new SpiffeBundle(trustDomain, { x509, jwt, sequence: sequence as number | undefined, refreshHintSeconds: refreshHint as number | undefined })
  }

  getX509Bundle (trustDomain: TrustDomain): X509Bundle | undefined {
    return trustDomain.equals(this.trustDomain) ? this.x509 : undefined
  }

  getJwtBundle (trustDomain: TrustDomain): JwtBundle | undefined {
    return trustDomain.equals(this.trustDomain) ? this.jwt : undefined
  }

  /** The SPIFFE bundle document: X.509 authorities as JWKs with `x5c`, then the JWT authorities. */
  toJSON (): SpiffeBundleDocument {
    const x509Keys = this.x509.authorities.map(cert => ({
      use: X509_USE,
      ...cert.publicKey.export({ format: 'jwk' }),
      x5c: [cert.raw.toString('base64')]
    }))
    const doc: SpiffeBundleDocument = { keys: [...x509Keys, ...this.jwt.toJwks().keys] }
    if (this.sequence !== undefined) doc.spiffe_sequence = this.sequence
    if (this.refreshHintSeconds !== undefined) doc.spiffe_refresh_hint = this.refreshHintSeconds
    return doc
  }

  /** The document as indented JSON text. */
  marshal (): string {
    return JSON.stringify(this.toJSON(), null, 2) + '\n'
  }
}

function optionalCount (value: number | undefined, field: string, trustDomain: TrustDomain): number | undefined {
  if (value !== undefined && (!Number.isSafeInteger(value) || value < 0)) {
    throw new BundleError('ERR_BUNDLE_INVALID', `SPIFFE bundle for ${trustDomain.name}: "${field}" must be a non-negative integer, got ${String(value)}`)
  }
  return value
}
