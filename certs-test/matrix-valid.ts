/** The valid fixtures of the certificate matrix: the shapes of X509-SVID a verifier must accept. */
import type { MatrixContext, Recipe } from './matrix'
import { createTestCa } from './pki'

export function validRecipes ({ now, rootA, rootB, intermediateA, issue }: MatrixContext): Recipe[] {
  const rsaRootA = createTestCa(rootA.trustDomain, { now, keyType: 'rsa-2048', name: `${rootA.trustDomain} RSA Root CA` })
  const rsaLeaf = { keyType: 'rsa-2048' } as const
  return [
    {
      name: 'valid-ec-direct',
      description: 'An EC P-256 SVID shaped like SPIRE\'s, signed directly by the EC root in the bundle.',
      present: issue(rootA)
    },
    {
      name: 'valid-rsa-direct',
      description: 'An RSA-2048 SVID signed directly by an RSA-2048 root in the bundle.',
      present: issue(rsaRootA, rsaLeaf),
      trustA: rsaRootA
    },
    {
      name: 'valid-ec-via-intermediate',
      description: 'An EC SVID signed by an EC intermediate, which the chain carries after the leaf.',
      present: issue(intermediateA)
    },
    {
      name: 'valid-rsa-via-intermediate',
      description: 'An RSA SVID signed by an RSA intermediate below the RSA root in the bundle.',
      present: issue(rsaRootA.createIntermediate({ now, keyType: 'rsa-2048' }), rsaLeaf),
      trustA: rsaRootA
    },
    {
      name: 'valid-via-two-intermediates',
      description: 'An SVID signed by the second of two intermediates, both carried in the chain.',
      present: issue(intermediateA.createIntermediate({ now }))
    },
    {
      name: 'valid-ec-leaf-rsa-ca',
      description: 'An EC P-256 SVID signed by an RSA-2048 root: key types may mix along a chain.',
      present: issue(rsaRootA),
      trustA: rsaRootA
    },
    {
      name: 'valid-with-dns-sans',
      description: 'An SVID that also carries DNS SANs, which play no part in its identity.',
      present: issue(rootA, { dnsNames: [`web.${rootA.trustDomain}`, 'localhost'] })
    },
    {
      name: 'valid-empty-subject-critical-san',
      description: 'An SVID with an empty subject and, as RFC 5280 4.2.1.6 then requires, a critical SAN extension.',
      present: issue(rootA, { override: { subject: {}, sanCritical: true } })
    },
    {
      name: 'valid-td-b',
      description: 'An SVID of the other trust domain, td-b.test, signed by its root.',
      id: `spiffe://${rootB.trustDomain}/valid-td-b`,
      present: issue(rootB)
    }
  ]
}
