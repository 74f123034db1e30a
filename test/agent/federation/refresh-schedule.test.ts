/**
 * When a federated bundle is fetched again (SPIRE's schedule: refresh hint ÷ 4, 5 min without a hint, a 1 min
 * floor), how failures back off, and how a fetched bundle compares with the held one (SPIFFE Federation §4.2).
 */
import t from 'tap'
import { generateKeyPairSync } from 'node:crypto'
import { createTestCa } from '../../../certs-test'
import { compareFreshness, nextRefreshMs, retryDelayMs } from '../../../agent/federation/refresh-schedule'
import { parseTrustDomain } from '../../../spiffe/id'
import { JwtBundle } from '../../../spiffe/jwt-bundle'
import { SpiffeBundle } from '../../../spiffe/spiffe-bundle'
import { X509Bundle } from '../../../spiffe/x509-bundle'

const TD = parseTrustDomain('plant-b.example')
const root1 = createTestCa(TD.name)
const root2 = createTestCa(TD.name)
const jwk = { ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }), kid: 'key-1', use: 'jwt-svid' }

function bundle (parts: { roots?: Buffer[], jwt?: boolean, sequence?: number, hint?: number } = {}): SpiffeBundle {
  return new SpiffeBundle(TD, {
    x509: new X509Bundle(TD, parts.roots ?? [root1.certDer]),
    jwt: JwtBundle.fromJwks(TD, { keys: parts.jwt === true ? [jwk] : [] }),
    sequence: parts.sequence,
    refreshHintSeconds: parts.hint
  })
}

void t.test('refresh schedule – the refresh hint ÷ 4, 5 minutes without one, never below the floor', async t => {
  t.equal(nextRefreshMs(bundle({ hint: 3600 })), 900_000, 'an hour\'s hint: every 15 minutes')
  t.equal(nextRefreshMs(bundle({ hint: 300 })), 75_000, 'SPIRE\'s default hint of 5 minutes: every 75 s')
  t.equal(nextRefreshMs(bundle()), 300_000, 'no hint: every 5 minutes')
  t.equal(nextRefreshMs(bundle({ hint: 0 })), 300_000, 'a hint of 0 is no hint')
  t.equal(nextRefreshMs(bundle({ hint: 60 })), 60_000, 'a short hint is held to the 1 minute floor')
  t.equal(nextRefreshMs(bundle({ hint: 1 })), 60_000)
  t.equal(nextRefreshMs(bundle({ hint: 60 }), 10_000), 15_000, 'another floor')
  t.equal(nextRefreshMs(bundle({ hint: 1_000_000_000 })), 2 ** 31 - 1, 'a huge hint stays within what a Node timer holds (else it would fire at once)')
})

void t.test('refresh schedule – without any bundle, retry at the floor (a bootstrap is noticed soon)', async t => {
  t.equal(nextRefreshMs(undefined), 60_000)
  t.equal(nextRefreshMs(undefined, 5_000), 5_000)
})

void t.test('refresh schedule – failures back off 5 s, 10 s, 20 s … up to the normal delay', async t => {
  t.same([1, 2, 3, 4, 5, 6].map(n => retryDelayMs(n, 75_000)), [5_000, 10_000, 20_000, 40_000, 75_000, 75_000])
  t.same([1, 5, 10, 11].map(n => retryDelayMs(n, 3_600_000)), [5_000, 80_000, 2_560_000, 3_600_000])
  t.equal(retryDelayMs(10_000, 60_000), 60_000, 'a long run of failures stays at the cap (no Infinity, no NaN)')
  t.equal(retryDelayMs(0, 60_000), 60_000, 'no failure: the normal delay')
  t.equal(retryDelayMs(1, 2_000), 2_000, 'never later than a success would refresh')
})

void t.test('refresh schedule – jitter spreads a delay by ±10%, and only with the random source given', async t => {
  t.equal(retryDelayMs(1, 60_000, () => 0), 4_500, 'the low end: -10%')
  t.equal(retryDelayMs(1, 60_000, () => 0.5), 5_000, 'the middle')
  t.equal(retryDelayMs(1, 60_000, () => 0.999999), 5_500, 'the high end: +10%')
  t.equal(retryDelayMs(3, 60_000, () => 0.25), 19_000)
  t.equal(retryDelayMs(9, 60_000, () => 0.999999), 60_000, 'jitter never goes past the normal delay')
  t.equal(retryDelayMs(9, 60_000, () => 0), 54_000, 'but may come in under it')
  const delays = Array.from({ length: 200 }, () => retryDelayMs(2, 60_000, Math.random))
  t.ok(delays.every(d => d >= 9_000 && d <= 11_000), 'Math.random stays within ±10%')
})

void t.test('refresh schedule – freshness: nothing held, the fetched one is newer', async t => {
  t.equal(compareFreshness(bundle(), undefined), 'newer')
  t.equal(compareFreshness(bundle({ sequence: 0 }), undefined), 'newer')
})

void t.test('refresh schedule – freshness: with spiffe_sequence on both, the sequence decides', async t => {
  t.equal(compareFreshness(bundle({ sequence: 5 }), bundle({ sequence: 4 })), 'newer')
  t.equal(compareFreshness(bundle({ sequence: 4 }), bundle({ sequence: 4 })), 'same')
  t.equal(compareFreshness(bundle({ sequence: 3 }), bundle({ sequence: 4 })), 'older')
  t.equal(compareFreshness(bundle({ sequence: 3, roots: [root2.certDer] }), bundle({ sequence: 4 })), 'older', 'an older sequence loses even with other authorities')
  t.equal(compareFreshness(bundle({ sequence: 0 }), bundle({ sequence: 1 })), 'older', '0 is a sequence too')
})

void t.test('refresh schedule – freshness without sequences on both: the same authorities are the same bundle, other ones are newer', async t => {
  t.equal(compareFreshness(bundle({ jwt: true }), bundle({ jwt: true })), 'same')
  t.equal(compareFreshness(bundle({ jwt: true, hint: 300 }), bundle({ jwt: true, hint: 60 })), 'same', 'the refresh hint is not content')
  t.equal(compareFreshness(bundle({ sequence: 9 }), bundle()), 'same', 'a sequence on one side only does not decide')
  t.equal(compareFreshness(bundle({ roots: [root1.certDer, root2.certDer] }), bundle({ roots: [root2.certDer, root1.certDer] })), 'same', 'the order of the authorities does not matter')
  t.equal(compareFreshness(bundle({ roots: [root2.certDer] }), bundle()), 'newer', 'another X.509 authority')
  t.equal(compareFreshness(bundle({ roots: [root1.certDer, root2.certDer] }), bundle()), 'newer', 'one more X.509 authority')
  t.equal(compareFreshness(bundle({ jwt: true }), bundle()), 'newer', 'a JWT key more')
  t.equal(compareFreshness(bundle(), bundle({ jwt: true })), 'newer', 'a JWT key fewer')
  // The same key, written with its members in another order (as another server's JSON encoder may), and the keys too.
  const reordered = SpiffeBundle.parse(TD, JSON.stringify({ keys: [Object.fromEntries(Object.entries(bundle({ jwt: true }).toJSON().keys[1]).reverse()), bundle().toJSON().keys[0]] }))
  t.equal(compareFreshness(reordered, bundle({ jwt: true })), 'same', 'JWK member order and key order do not matter')
})
