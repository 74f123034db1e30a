/**
 * The AttestAgent client against a stand-in SPIRE server (fixtures/fake-spire-server.ts): the exchange in SPIRE's
 * order gives the agent SVID for our fresh key; every other order, a refusal, a wrong server, an unreachable or
 * silent one, and an SVID that is not ours, each end in an UpstreamError whose code and message say which.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { status } from '@grpc/grpc-js'
import { createTestCa, generateKeyPair, TestManufacturer } from '../../../certs-test'
import { attestAgent, birthCredential, upstreamServer, x509popAttestor } from '../../../agent/upstream'
import type { UpstreamServer } from '../../../agent/upstream'
import { parseTrustDomain } from '../../../spiffe/id'
import { freePort } from '../../../bench/proxy/processes'
import { AGENT_ID, TRUST_DOMAIN, agentResult, csrKey, nextRequest, startFakeSpireServer } from './fixtures/fake-spire-server'
import type { AttestCall, FakeSpireServer } from './fixtures/fake-spire-server'

const birth = new TestManufacturer().issueBirthCert('SN-FAKE')
const attestor = x509popAttestor(birthCredential(birth.chain, birth.key))
const td = parseTrustDomain(TRUST_DOMAIN)
const serverOf = (fake: FakeSpireServer): UpstreamServer => upstreamServer(fake.address, td, fake.bundlePem)
const challenge = (bytes = 32): object => ({ challenge: Buffer.from(JSON.stringify({ rsa_signature: null, ecdsa_signature: { nonce: randomBytes(bytes).toString('base64') } })) })

async function failure (server: UpstreamServer, timeoutMs?: number): Promise<unknown> {
  return await attestAgent({ server, attestor, timeoutMs }).then(() => new Error('attested, but should have failed'), (err: unknown) => err)
}

void t.test('AttestAgent – params, challenge, response, result: the agent SVID for our fresh key', async t => {
  let seen: { type?: string, payload?: string, response?: string } = {}
  const fake = await startFakeSpireServer(t, async (call, ca) => {
    const first = await nextRequest(call)
    seen = { type: first.params?.data?.type, payload: first.params?.data?.payload.toString() }
    call.write(challenge())
    const { challenge_response: response } = await nextRequest(call)
    seen.response = response?.toString()
    call.write(agentResult(ca, csrKey(first.params?.params?.csr ?? Buffer.alloc(0))))
    call.end()
  })
  const svid = await attestAgent({ server: serverOf(fake), attestor })
  t.equal(seen.type, 'x509pop')
  t.equal(seen.payload, attestor.payload().toString(), 'the birth certificate chain as payload')
  t.match(seen.response, /^\{"rsa_signature":null,"ecdsa_signature":\{"nonce":/, 'an ECDSA response')
  t.equal(svid.id.toString(), AGENT_ID)
  t.equal(svid.chain.length, 1)
  t.equal(svid.key.asymmetricKeyDetails?.namedCurve, 'prime256v1', 'a fresh EC P-256 key')
  t.ok(svid.reattestable)
  t.ok(svid.expiresAt.getTime() > Date.now())
})

void t.test('AttestAgent – a server that breaks the order is refused as ERR_UPSTREAM_PROTOCOL', async t => {
  const cases: Array<[string, (call: AttestCall, ca: Parameters<typeof agentResult>[0]) => Promise<void>, RegExp]> = [
    ['a challenge after the result', async (call, ca) => {
      const { params } = await nextRequest(call)
      call.write(agentResult(ca, csrKey(params?.params?.csr ?? Buffer.alloc(0))))
      call.write(challenge())
      call.end()
    }, /challenge after the result/],
    ['the stream ends without a result', async call => {
      await nextRequest(call)
      call.end()
    }, /without a result/],
    ['a result without an SVID', async call => {
      await nextRequest(call)
      call.write({ result: { reattestable: true } })
      call.end()
    }, /neither a challenge nor a result with an X509-SVID/],
    ['challenges without end', async call => {
      await nextRequest(call)
      for (;;) {
        call.write(challenge())
        await nextRequest(call)
      }
    }, /more than 8 challenges/]
  ]
  for (const [what, script, reason] of cases) {
    const fake = await startFakeSpireServer(t, script)
    t.match(await failure(serverOf(fake)), { code: 'ERR_UPSTREAM_PROTOCOL', message: reason }, what)
  }
})

void t.test('AttestAgent – the server\'s refusal keeps SPIRE\'s reason', async t => {
  const refuse = (code: status, details: string) => async (call: AttestCall): Promise<void> => {
    await nextRequest(call)
    call.emit('error', { code, details })
  }
  const denied = await startFakeSpireServer(t, refuse(status.PERMISSION_DENIED, 'challenge response verification failed: ECDSA signature verify failed'))
  t.match(await failure(serverOf(denied)), {
    code: 'ERR_NODE_ATTESTATION_DENIED',
    message: /refused the attestation: challenge response verification failed: ECDSA signature verify failed$/
  })
  const invalid = await startFakeSpireServer(t, refuse(status.FAILED_PRECONDITION, 'error getting node attestor: could not find node attestor type "x509pop"'))
  t.match(await failure(serverOf(invalid)), {
    code: 'ERR_NODE_ATTESTATION_FAILED',
    message: /\(FAILED_PRECONDITION\): error getting node attestor: could not find node attestor type "x509pop"/
  })
})

void t.test('AttestAgent – a challenge x509pop cannot answer ends the exchange, unsigned', async t => {
  let answered = false
  const fake = await startFakeSpireServer(t, async call => {
    await nextRequest(call)
    call.write(challenge(16))
    answered = (await nextRequest(call).catch(() => undefined))?.challenge_response !== undefined
  })
  t.match(await failure(serverOf(fake)), { code: 'ERR_X509POP_CHALLENGE_INVALID', message: /16 bytes; x509pop uses 32/ })
  t.notOk(answered, 'no response was sent')
})

void t.test('AttestAgent – an agent SVID that is not ours is refused as ERR_AGENT_SVID_INVALID', async t => {
  const otherKey = await startFakeSpireServer(t, async (call, ca) => {
    await nextRequest(call)
    call.write(agentResult(ca, generateKeyPair().publicKey))
    call.end()
  })
  t.match(await failure(serverOf(otherKey)), { code: 'ERR_AGENT_SVID_INVALID', message: /certifies another key/ })
  const otherId = await startFakeSpireServer(t, async (call, ca) => {
    const { params } = await nextRequest(call)
    call.write(agentResult(ca, csrKey(params?.params?.csr ?? Buffer.alloc(0)), AGENT_ID, `spiffe://${TRUST_DOMAIN}/spire/agent/x509pop/other`))
    call.end()
  })
  t.match(await failure(serverOf(otherId)), { code: 'ERR_AGENT_SVID_INVALID', message: /names .*0123, the result says .*other/ })
  const foreignCa = await startFakeSpireServer(t, async call => {
    const { params } = await nextRequest(call)
    call.write(agentResult(createTestCa(TRUST_DOMAIN), csrKey(params?.params?.csr ?? Buffer.alloc(0))))
    call.end()
  })
  t.match(await failure(serverOf(foreignCa)), { code: 'ERR_AGENT_SVID_INVALID', message: /does not verify/ })
})

void t.test('AttestAgent – a server that is not spiffe://<td>/spire/server under the bundle is refused before anything is sent', async t => {
  let reached = false
  const script = (): void => { reached = true }
  const impostor = await startFakeSpireServer(t, script, `spiffe://${TRUST_DOMAIN}/not-the-server`)
  t.match(await failure(serverOf(impostor)), { code: 'ERR_UPSTREAM_IDENTITY', message: /is not spiffe:\/\/fleet\.example\/spire\/server under the trust bundle: peer is spiffe:\/\/fleet\.example\/not-the-server/ })
  const genuine = await startFakeSpireServer(t, script)
  t.match(await failure(upstreamServer(genuine.address, td, createTestCa(TRUST_DOMAIN).certPem)), { code: 'ERR_UPSTREAM_IDENTITY' }, 'a bundle that does not vouch for the server')
  t.notOk(reached, 'AttestAgent was never called')
})

void t.test('AttestAgent – unreachable, silent and misaddressed servers', async t => {
  const fake = await startFakeSpireServer(t, () => undefined) // never answers
  t.match(await failure(serverOf(fake), 500), { code: 'ERR_UPSTREAM_TIMEOUT', message: /did not finish AttestAgent in time/ })
  const closed = await freePort()
  t.match(await failure(upstreamServer(`127.0.0.1:${closed}`, td, fake.bundlePem)), { code: 'ERR_UPSTREAM_UNREACHABLE', message: /ECONNREFUSED/ })
  t.match(await failure(upstreamServer('spire-server', td, fake.bundlePem)), { code: 'ERR_UPSTREAM_ADDRESS', message: /"spire-server" is not host:port/ })
})
