/**
 * Micro-benchmark: X509-SVID verification (parse, leaf rules, path validation with signature checks).
 * "first sight" cycles through more distinct chains than the parse cache holds, so every call parses the leaf and
 * checks its signature; "repeat peer" verifies the same chain again, as a sidecar does for a peer it knows.
 */
import { createTestCa } from '../../certs-test/pki'
import type { KeyType, TestCa } from '../../certs-test/pki'
import { X509Bundle } from '../../spiffe/x509-bundle'
import { verifyX509Svid } from '../../spiffe/x509-svid'
import { PARSE_CACHE_LIMIT } from '../../spiffe/x509-cert-cache'
import { parseTrustDomain } from '../../spiffe/id'
import { measure } from '../measure'
import type { Rate } from '../measure'

export function benchX509Svid (): Rate[] {
  const td = parseTrustDomain('plant.example')
  const ecRoot = createTestCa(td.name)
  const rsaRoot = createTestCa(td.name, { keyType: 'rsa-2048' })
  const bundle = new X509Bundle(td, [ecRoot.certDer, rsaRoot.certDer])
  const cases: Array<[string, TestCa, KeyType]> = [
    ['EC P-256, leaf signed by the root', ecRoot, 'ec-p256'],
    ['EC P-256, via one intermediate', ecRoot.createIntermediate(), 'ec-p256'],
    ['RSA-2048, leaf signed by the root', rsaRoot, 'rsa-2048']
  ]
  return cases.flatMap(([name, ca, keyType]) => {
    const chains = Array.from({ length: PARSE_CACHE_LIMIT + 44 }, (_, i) => ca.issueSvid(`${td.idString}/w${i}`, { keyType }).chain)
    return [
      measure(`verifyX509Svid, ${name}, first sight`, i => verifyX509Svid(chains[i % chains.length], bundle)),
      measure(`verifyX509Svid, ${name}, repeat peer`, () => verifyX509Svid(chains[0], bundle))
    ]
  })
}
