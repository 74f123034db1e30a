/**
 * A Chaperone device publishes its JWT signing key to a real `spire-server` (SPIRE_VERSION), as a nested SPIRE
 * server's `spire` UpstreamAuthority does: it attests with x509pop (x509pop-device.ts), is registered `-downstream`,
 * enrols (obtainDeviceCa) and, presenting the downstream entry's X509-SVID, calls Bundle/PublishJWTAuthority with a
 * fresh EC P-256 key. The answer must be SPIRE's own JWT keys plus ours; GetBundle and `spire-server bundle show`
 * must then list ours; and a JWT-SVID the key signs, which SPIRE's agent refused before, must pass SPIRE's own
 * Workload API (`spire-agent api validate jwt`) once the agent has synced the bundle, for its audience only.
 * Refusal: the same call with the agent X509-SVID is SPIRE's PermissionDenied, passed through as ERR_UPSTREAM_DENIED,
 * and that key never reaches the bundle. Part of `npm run test:interop`.
 */
import t from 'tap'
import { createPublicKey } from 'node:crypto'
import { createJwtKey, signJwtSvid } from '../../agent/ca/jwt-issuer'
import type { JwtKey } from '../../agent/ca/jwt-issuer'
import { fetchAuthorizedEntries, fetchUpstreamBundle, obtainDeviceCa } from '../../agent/upstream'
import type { ClientSvid, UpstreamServer } from '../../agent/upstream'
import { publishJwtAuthority } from '../../agent/upstream/publish-jwt-authority'
import type { JwtAuthority } from '../../agent/upstream/publish-jwt-authority'
import { parseSpiffeId, parseTrustDomain } from '../../spiffe/id'
import { SpiffeBundle } from '../../spiffe/spiffe-bundle'
import { waitFor } from '../helpers/command'
import { interopSkip, SPIRE_VERSION } from './peers'
import type { SpireStand } from './spire-stand'
import { attestDevice, startX509popStand } from './x509pop-device'

const skip = interopSkip()
const TD = parseTrustDomain('fleet.example')
const AUDIENCE = 'spire-interop'
const HOUR = 3600

/** The JWT key IDs of SPIRE's bundle as `spire-server bundle show` prints it. */
async function shownKeyIds (spire: SpireStand): Promise<string[]> {
  return [...SpiffeBundle.parse(TD, await spire.server('bundle', 'show', '-format', 'spiffe')).jwt.keys.keys()].sort()
}

/** `spire-agent api validate jwt` by this process: its status and what it printed. */
async function validateJwt (spire: SpireStand, token: string, audience = AUDIENCE): Promise<{ ok: boolean, out: string }> {
  const result = await spire.agentCommand(['api', 'validate', 'jwt', '-audience', audience, '-svid', token])
  return { ok: result.status === 0, out: `${result.stdout}${result.stderr}`.trim() }
}

/** A JWT-SVID for `sub` and our audience, signed by `key`. */
async function tokenOf (key: JwtKey, sub: string): Promise<string> {
  return (await signJwtSvid(key, { spiffeId: parseSpiffeId(sub), audience: [AUDIENCE], ttlSeconds: 600 }, new Date())).token
}

async function publish (server: UpstreamServer, caller: ClientSvid, key: JwtKey): Promise<JwtAuthority[]> {
  return await publishJwtAuthority(server, caller, { keyId: key.id, publicKey: createPublicKey(key.privateKey), expiresAt: key.notAfter })
}

void t.test(`a device publishes its JWT key to spire-server ${SPIRE_VERSION} (PublishJWTAuthority)`, { skip, timeout: 600_000 }, async t => {
  const { maker, spire, server } = await startX509popStand(t, TD)
  const serial = 'SN-JWT-0001'
  const deviceId = `spiffe://${TD.name}/device/${serial}`
  const agent = await attestDevice(server, maker.issueBirthCert(serial))
  await spire.createEntry({ parentId: agent.id.toString(), spiffeId: deviceId, selectors: [`x509pop:subject:cn:${serial}`], downstream: true })
  await waitFor('SPIRE to authorize the downstream entry to the agent', 30_000, async () =>
    (await fetchAuthorizedEntries(server, agent)).some(entry => entry.spiffeId === deviceId) ? true : undefined)
  const { downstreamSvid } = await obtainDeviceCa(server, agent, { preferredTtlSeconds: HOUR })
  const spireKeyIds = await shownKeyIds(spire)

  await t.test('as the downstream entry: SPIRE takes the key, lists it, and its agent validates JWT-SVIDs it signs', async t => {
    const key = await createJwtKey('ec-p256', HOUR, new Date())
    const token = await tokenOf(key, `${deviceId}/workload`)
    const before = await validateJwt(spire, token)
    t.notOk(before.ok, `before publishing, SPIRE's agent refuses the token: ${before.out}`)
    t.match(before.out, `public key "${key.id}" not found`, 'for want of its key')

    const authorities = await publish(server, downstreamSvid, key)
    t.ok(spireKeyIds.length > 0, 'SPIRE has a JWT key of its own')
    t.same(authorities.map(a => a.keyId).sort(), [...spireKeyIds, key.id].sort(), 'the answer is SPIRE\'s JWT keys and ours')
    const ours = authorities.find(a => a.keyId === key.id)
    t.ok(ours?.publicKey.equals(createPublicKey(key.privateKey)), 'ours with our public key')
    t.same(ours?.expiresAt, key.notAfter, 'and our expiry')

    t.ok((await fetchUpstreamBundle(server)).jwt.keys.has(key.id), 'GetBundle lists our key')
    t.same(await shownKeyIds(spire), authorities.map(a => a.keyId).sort(), 'spire-server bundle show lists the same keys')

    const valid = await waitFor('SPIRE\'s agent to validate the token (it syncs the bundle every 5 s)', 60_000, async () => {
      const result = await validateJwt(spire, token)
      return result.ok ? result : undefined
    })
    t.match(valid.out, `${deviceId}/workload`, `SPIRE's agent validates the token and names its subject: ${valid.out}`)
    const otherAudience = await validateJwt(spire, token, 'another')
    t.notOk(otherAudience.ok, `and refuses it for another audience: ${otherAudience.out}`)
  })

  await t.test('as the agent: SPIRE refuses (PermissionDenied, ERR_UPSTREAM_DENIED) and the key stays out', async t => {
    const key = await createJwtKey('ec-p256', HOUR, new Date())
    const refused = await publish(server, agent, key).then(() => new Error('published, but should have been refused'), (err: unknown) => err)
    t.match(refused, {
      code: 'ERR_UPSTREAM_DENIED',
      message: /authorization denied for method \/spire\.api\.server\.bundle\.v1\.Bundle\/PublishJWTAuthority/
    }, 'SPIRE\'s refusal, its reason kept')
    t.notOk((await fetchUpstreamBundle(server)).jwt.keys.has(key.id), 'GetBundle does not list the key')
  })
})
