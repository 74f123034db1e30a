import t from 'tap'
import { createTestCa } from '../../certs-test/pki'
import { parseTrustDomain } from '../../spiffe/id'
import { X509Bundle } from '../../spiffe/x509-bundle'
import { verifyX509Svid } from '../../spiffe/x509-svid'
import { ChaperoneError } from '../../spiffe/errors'

// Invariant 6: hostile certificates get a typed error, never a crash or an unexpected exception.
// Deterministic mutations (a seeded generator), so a failure reproduces.
function seededRandom (seed: number): () => number {
  let state = seed
  return () => {
    state = (state * 1103515245 + 12345) & 0x7fffffff
    return state / 0x7fffffff
  }
}

void t.test('x509-svid – thousands of mutated chains are each accepted or rejected with a ChaperoneError', async t => {
  const root = createTestCa('td-a.test')
  const middle = root.createIntermediate()
  const svid = middle.issueSvid('spiffe://td-a.test/api', { dnsNames: ['api.local'] })
  const bundle = new X509Bundle(parseTrustDomain('td-a.test'), [root.certDer])
  const random = seededRandom(20261122)
  const codes = new Map<string, number>()
  let accepted = 0
  const rounds = 3000
  for (let i = 0; i < rounds; i++) {
    const target = random() < 0.7 ? 0 : 1
    const chain = svid.chain.map(der => Buffer.from(der))
    const der = chain[target]
    const flips = 1 + Math.floor(random() * 3)
    for (let f = 0; f < flips; f++) der[Math.floor(random() * der.length)] ^= 1 << Math.floor(random() * 8)
    try {
      verifyX509Svid(chain, bundle)
      accepted++
    } catch (err) {
      if (!(err instanceof ChaperoneError)) {
        t.fail(`round ${i}: unexpected ${String(err)}`)
        continue
      }
      const { code } = err as ChaperoneError
      codes.set(code, (codes.get(code) ?? 0) + 1)
    }
  }
  t.ok(codes.size >= 3, `rejections spread over several codes: ${JSON.stringify(Object.fromEntries(codes))}`)
  // Every byte of a certificate is either signed or checked against what is signed (OpenSSL compares the outer
  // signature algorithm with the signed copy), so no mutation may verify.
  t.equal(accepted, 0, `${accepted} of ${rounds} mutated chains still verified`)
})
