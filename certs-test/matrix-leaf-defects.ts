/**
 * Fixtures whose leaf breaks one X509-SVID rule (standards/X509-SVID.md sections 2, 4.1–4.4) while its chain is
 * sound: signed by the td-a.test root, which is in the bundle.
 */
import type { CertSpec, KeyUsageBit } from './build-cert'
import type { MatrixContext, Recipe } from './matrix'

const SPIRE_KEY_USAGE: KeyUsageBit[] = ['digitalSignature', 'keyEncipherment', 'keyAgreement']
// Under IANA's enterprise number for documentation (RFC 5612), so no verifier can know it. (A UUID OID under
// 2.25 would be the other choice, but forge's OID encoder only takes arcs below 2^32.)
const UNKNOWN_OID = '1.3.6.1.4.1.32473.1.1'
const DER_NULL = Buffer.from([0x05, 0x00])

export function leafDefectRecipes ({ at, rootA, issue }: MatrixContext): Recipe[] {
  const td = rootA.trustDomain
  const leaf = (override: Partial<CertSpec>): Recipe['present'] => issue(rootA, { override })
  const keyUsage = (usages: KeyUsageBit[], critical = true): Recipe['present'] => leaf({ keyUsage: { usages, critical } })
  return [
    {
      name: 'expired',
      description: 'The leaf\'s NotAfter passed an hour ago.',
      present: leaf({ notBefore: at(-7200), notAfter: at(-3600) }),
      reject: { code: 'ERR_X509_SVID_EXPIRED', reason: /expired/ }
    },
    {
      name: 'not-yet-valid',
      description: 'The leaf\'s NotBefore is an hour from now.',
      present: leaf({ notBefore: at(3600), notAfter: at(7200) }),
      reject: { code: 'ERR_X509_SVID_NOT_YET_VALID', reason: /not yet valid/ }
    },
    {
      name: 'no-uri-san',
      description: 'The leaf has no subjectAltName extension at all, so no SPIFFE ID.',
      present: leaf({ uris: [] }),
      reject: { code: 'ERR_X509_SVID_NO_URI_SAN', reason: /URI SAN/ }
    },
    {
      name: 'no-uri-san-dns-only',
      description: 'The leaf\'s subjectAltName holds a DNS name but no URI.',
      present: leaf({ uris: [], dnsNames: [`web.${td}`] }),
      reject: { code: 'ERR_X509_SVID_NO_URI_SAN', reason: /URI SAN/ }
    },
    {
      name: 'two-uri-sans',
      description: 'The leaf carries two URI SANs; an X509-SVID has exactly one.',
      present: id => leaf({ uris: [id, `spiffe://${td}/second`] })(id),
      reject: { code: 'ERR_X509_SVID_MULTIPLE_URI_SANS', reason: /URI SANs/ }
    },
    {
      name: 'non-spiffe-uri',
      description: 'The leaf\'s only URI SAN is an https URI, not a SPIFFE ID.',
      present: leaf({ uris: [`https://${td}/non-spiffe-uri`] }),
      reject: { code: 'ERR_X509_SVID_NOT_SPIFFE_URI', reason: /https:\/\/td-a\.test\/non-spiffe-uri/ }
    },
    {
      name: 'id-without-path',
      description: 'The leaf\'s SPIFFE ID is the trust domain\'s own ID (no path), which names no workload.',
      present: leaf({ uris: [`spiffe://${td}`] }),
      reject: { code: 'ERR_X509_SVID_ID_NO_PATH', reason: /path/ }
    },
    {
      name: 'invalid-id-syntax',
      description: 'The leaf\'s SPIFFE ID has an empty path segment (spiffe://td-a.test/a//b).',
      present: leaf({ uris: [`spiffe://${td}/a//b`] }),
      reject: { code: 'ERR_X509_SVID_ID_INVALID', reason: /empty segment/ }
    },
    {
      name: 'invalid-id-uppercase-td',
      description: 'The leaf\'s SPIFFE ID spells the trust domain in uppercase, which IDs never normalise.',
      present: leaf({ uris: [`spiffe://${td.toUpperCase()}/invalid-id-uppercase-td`] }),
      reject: { code: 'ERR_X509_SVID_ID_INVALID', reason: /lowercase/ }
    },
    {
      name: 'leaf-is-ca',
      description: 'The leaf\'s basicConstraints says cA=true.',
      present: leaf({ basicConstraints: { cA: true, critical: true } }),
      reject: { code: 'ERR_X509_SVID_LEAF_IS_CA', reason: /\bCA\b/i }
    },
    {
      name: 'leaf-key-cert-sign',
      description: 'The leaf\'s keyUsage includes keyCertSign, which only signing certificates may have.',
      present: keyUsage([...SPIRE_KEY_USAGE, 'keyCertSign']),
      reject: { code: 'ERR_X509_SVID_KEY_USAGE', reason: /keyCertSign/ }
    },
    {
      name: 'leaf-crl-sign',
      description: 'The leaf\'s keyUsage includes cRLSign, which only signing certificates may have.',
      present: keyUsage([...SPIRE_KEY_USAGE, 'cRLSign']),
      reject: { code: 'ERR_X509_SVID_KEY_USAGE', reason: /cRLSign/ }
    },
    {
      name: 'leaf-no-digital-signature',
      description: 'The leaf\'s keyUsage lacks digitalSignature (it has keyEncipherment and keyAgreement only).',
      present: keyUsage(['keyEncipherment', 'keyAgreement']),
      reject: { code: 'ERR_X509_SVID_KEY_USAGE', reason: /digitalSignature/ }
    },
    {
      name: 'leaf-key-usage-not-critical',
      description: 'The leaf\'s keyUsage has the right bits but is not marked critical.',
      present: keyUsage(SPIRE_KEY_USAGE, false),
      reject: { code: 'ERR_X509_SVID_KEY_USAGE', reason: /keyUsage.*critical/ }
    },
    {
      name: 'leaf-key-usage-missing',
      description: 'The leaf has no keyUsage extension.',
      present: leaf({ keyUsage: undefined }),
      reject: { code: 'ERR_X509_SVID_KEY_USAGE', reason: /keyUsage/ }
    },
    {
      name: 'eku-without-client-auth',
      description: 'The leaf\'s extendedKeyUsage has serverAuth but not clientAuth.',
      present: leaf({ extKeyUsage: ['serverAuth'] }),
      reject: { code: 'ERR_X509_SVID_EXT_KEY_USAGE', reason: /clientAuth/ }
    },
    {
      name: 'eku-without-server-auth',
      description: 'The leaf\'s extendedKeyUsage has clientAuth but not serverAuth.',
      present: leaf({ extKeyUsage: ['clientAuth'] }),
      reject: { code: 'ERR_X509_SVID_EXT_KEY_USAGE', reason: /serverAuth/ }
    },
    {
      name: 'unknown-critical-extension',
      description: `The leaf carries an extension no verifier knows (${UNKNOWN_OID}), marked critical.`,
      present: leaf({ extraExtension: { oid: UNKNOWN_OID, critical: true, value: DER_NULL } }),
      reject: { code: 'ERR_X509_SVID_CRITICAL_EXTENSION', reason: /critical extension/ }
    },
    {
      name: 'empty-subject-san-not-critical',
      description: 'The leaf\'s subject is empty but its SAN extension is not critical, against RFC 5280 4.2.1.6.',
      present: leaf({ subject: {}, sanCritical: false }),
      reject: { code: 'ERR_X509_SVID_MALFORMED', reason: /subject.*critical/ }
    }
  ]
}
