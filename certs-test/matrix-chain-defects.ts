/**
 * Fixtures whose leaf is a well-formed SVID but whose chain fails: RFC 5280 section 6 path validation against the
 * bundle of the leaf's own trust domain, or the rules for signing certificates (standards/X509-SVID.md section 5).
 */
import { buildCertificate } from './build-cert'
import type { MatrixContext, Recipe } from './matrix'
import { createTestCa, generateKeyPair, svidProfile } from './pki'

export function chainDefectRecipes ({ now, at, rootA, rootB, intermediateA, issue }: MatrixContext): Recipe[] {
  const td = rootA.trustDomain
  // Same name and trust domain ID as rootA, but another key: only the signature tells them apart.
  const impostorRoot = createTestCa(td, { now, name: `${td} Root CA` })
  const pathLenZeroRoot = createTestCa(td, { now, override: { basicConstraints: { cA: true, pathLen: 0, critical: true } } })
  const expiredIntermediate = rootA.createIntermediate({ now, name: `${td} Expired Intermediate CA`, notBefore: at(-2 * 86400), notAfter: at(-3600) })
  const leafOnly = (present: Recipe['present']): Recipe['present'] => id => {
    const { chain, key } = present(id)
    return { chain: chain.slice(0, 1), key }
  }
  return [
    {
      name: 'untrusted-ca',
      description: 'The leaf is signed by a root in no bundle, named exactly like the td-a.test root.',
      present: issue(impostorRoot),
      reject: { code: 'ERR_X509_SVID_UNTRUSTED', reason: /name matches an authority of trust domain td-a\.test but not its key/ }
    },
    {
      name: 'wrong-trust-domain',
      description: 'The leaf\'s ID is in td-a.test but td-b.test\'s root signed it.',
      present: issue(rootB),
      reject: { code: 'ERR_X509_SVID_WRONG_TRUST_DOMAIN', reason: /td-b\.test/ }
    },
    {
      name: 'missing-intermediate',
      description: 'The leaf is signed by an intermediate, but the chain carries only the leaf.',
      present: leafOnly(issue(intermediateA)),
      reject: { code: 'ERR_X509_SVID_UNTRUSTED', reason: /issued by "[^"]*Intermediate CA 1", which is neither in the presented chain nor an authority of trust domain td-a\.test/ }
    },
    {
      name: 'self-signed-leaf',
      description: 'An SVID-shaped leaf signed with its own key instead of by a CA.',
      present: id => {
        const { privateKey, publicKey } = generateKeyPair()
        const der = buildCertificate({ ...svidProfile(id), issuer: { selfSigned: privateKey }, publicKey, notBefore: at(-10), notAfter: at(3600) })
        return { chain: [der], key: privateKey }
      },
      reject: { code: 'ERR_X509_SVID_SELF_SIGNED', reason: /self-signed/ }
    },
    {
      name: 'tampered-signature',
      description: 'The leaf\'s signature has one bit flipped, so it no longer verifies under the root\'s key.',
      present: issue(rootA, { override: { tamperSignature: true } }),
      reject: { code: 'ERR_X509_SVID_BAD_SIGNATURE', reason: /signature/ }
    },
    {
      name: 'intermediate-not-ca',
      description: 'The intermediate that signed the leaf has basicConstraints cA=false.',
      present: issue(rootA.createIntermediate({ now, override: { basicConstraints: { cA: false, critical: true } } })),
      reject: { code: 'ERR_X509_SVID_BAD_SIGNING_CERT', reason: /\bCA\b/i }
    },
    {
      name: 'intermediate-no-key-cert-sign',
      description: 'The intermediate that signed the leaf has keyUsage digitalSignature and cRLSign but not keyCertSign.',
      present: issue(rootA.createIntermediate({ now, override: { keyUsage: { usages: ['digitalSignature', 'cRLSign'], critical: true } } })),
      reject: { code: 'ERR_X509_SVID_BAD_SIGNING_CERT', reason: /keyCertSign/ }
    },
    {
      name: 'path-length-exceeded',
      description: 'The root in the bundle has pathLenConstraint 0, yet an intermediate stands between it and the leaf.',
      present: issue(pathLenZeroRoot.createIntermediate({ now })),
      trustA: pathLenZeroRoot,
      reject: { code: 'ERR_X509_SVID_BAD_SIGNING_CERT', reason: /path ?len/i }
    },
    {
      name: 'expired-intermediate',
      description: 'The intermediate expired an hour ago; the leaf itself is within its validity.',
      // The leaf's NotAfter is set past its issuer's on purpose: issueSvid would clamp it to the expired one.
      present: issue(expiredIntermediate, { override: { notAfter: at(3600) } }),
      reject: { code: 'ERR_X509_SVID_EXPIRED', reason: /intermediate/i }
    }
  ]
}
