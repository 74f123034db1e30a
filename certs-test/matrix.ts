/**
 * The certificate matrix: named X509-SVID chains, each valid or broken in exactly one way, with the trust a
 * verifier is given and the verdict it must reach. The rules come from the X509-SVID standard
 * (https://github.com/spiffe/spiffe/blob/main/standards/X509-SVID.md) and RFC 5280 path validation.
 */
import type { KeyObject } from 'node:crypto'
import type { X509SvidErrorCode } from '../spiffe/errors'
import { createTestCa, type SvidOptions, type TestCa } from './pki'
import { chainDefectRecipes } from './matrix-chain-defects'
import { leafDefectRecipes } from './matrix-leaf-defects'
import { validRecipes } from './matrix-valid'

export interface CertFixture {
  /** Kebab-case, names the defect: 'expired', 'no-uri-san', …; valid ones start with 'valid-'. */
  name: string
  /** One sentence: what is wrong (or right) with it. */
  description: string
  /** DER, leaf first, as a peer would present it. */
  chain: Buffer[]
  /** The leaf's private key. */
  key: KeyObject
  /** Trust domain name -> DER CA certificates: the trust the verifier is given. Always both trust domains. */
  bundles: Record<string, Buffer[]>
  /** Accepted with this SPIFFE ID, or rejected with this code and a message matching `reason`. */
  expect: { id: string } | { code: X509SvidErrorCode, reason: RegExp }
}

export const TRUST_DOMAIN_A = 'td-a.test'
export const TRUST_DOMAIN_B = 'td-b.test'

/** A fixture before its trust is filled in. */
export interface Recipe {
  name: string
  description: string
  /** The SPIFFE ID handed to `present`; defaults to `spiffe://td-a.test/<name>`. */
  id?: string
  /** Builds what the peer presents; a broken recipe may write something other than `id` into the leaf. */
  present: (id: string) => { chain: Buffer[], key: KeyObject }
  /** The td-a.test root in the bundle, when not the shared EC root. */
  trustA?: TestCa
  /** Omitted for a valid fixture, which is accepted with `id`. */
  reject?: { code: X509SvidErrorCode, reason: RegExp }
}

/** What recipes build on: the shared CAs and the clock. Built per call; nothing is cached across calls. */
export interface MatrixContext {
  now: Date
  /** `now` shifted by this many seconds. */
  at: (seconds: number) => Date
  /** EC roots of td-a.test and td-b.test, the default trust. */
  rootA: TestCa
  rootB: TestCa
  /** An EC intermediate below rootA. */
  intermediateA: TestCa
  /** Issues a SPIRE-shaped SVID from `ca` at `now`; `opts` may break it. */
  issue: (ca: TestCa, opts?: SvidOptions) => (id: string) => { chain: Buffer[], key: KeyObject }
}

/** Builds every fixture for the moment `now`: validity windows are relative to it. */
export function buildCertMatrix (now = new Date()): CertFixture[] {
  const rootA = createTestCa(TRUST_DOMAIN_A, { now })
  const rootB = createTestCa(TRUST_DOMAIN_B, { now })
  const context: MatrixContext = {
    now,
    at: seconds => new Date(now.getTime() + seconds * 1000),
    rootA,
    rootB,
    intermediateA: rootA.createIntermediate({ now }),
    issue: (ca, opts) => id => ca.issueSvid(id, { now, ...opts })
  }
  return [...validRecipes(context), ...leafDefectRecipes(context), ...chainDefectRecipes(context)].map(recipe => {
    const id = recipe.id ?? `spiffe://${TRUST_DOMAIN_A}/${recipe.name}`
    const { chain, key } = recipe.present(id)
    return {
      name: recipe.name,
      description: recipe.description,
      chain,
      key,
      bundles: { [TRUST_DOMAIN_A]: [(recipe.trustA ?? rootA).certDer], [TRUST_DOMAIN_B]: [rootB.certDer] },
      expect: recipe.reject ?? { id }
    }
  })
}

