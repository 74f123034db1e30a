/**
 * SPIRE's own Workload API client, `spire-agent api …` and `spire-agent healthcheck` at SPIRE_VERSION, pointed at
 * the Chaperone agent's socket: what SPIRE's users run to look at an agent must work on ours. Each case proves the
 * allowed caller (this process's uid, registered) and the refused one (an unregistered uid). Part of
 * `npm run test:interop`.
 */
import t from 'tap'
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { run, waitFor } from '../helpers/command'
import { startAgentStand, TRUST_DOMAIN } from './agent-stand'
import { interopSkip, spireAgent, SPIRE_VERSION } from './peers'

const skip = interopSkip()
const ID = `spiffe://${TRUST_DOMAIN}/spire-cli`

void t.test(`spire-agent ${SPIRE_VERSION} api and healthcheck against the Chaperone agent`, { skip, timeout: 1_800_000 }, async t => {
  const builtAt = Date.now()
  const built = await spireAgent()
  t.comment(`spire-agent ready in ${((Date.now() - builtAt) / 1000).toFixed(1)} s`)
  const stand = await startAgentStand(t, ID)
  const { dir, socket } = stand
  const spire = stand.placePeer(built, 'spire-agent')
  const api = async (...args: string[]): Promise<{ status: number | null, out: string }> =>
    await stand.runPeer(spire, ['api', ...args, '-socketPath', socket])
  const asStranger = async (...args: string[]): Promise<{ status: number | null, out: string }> =>
    await stand.runPeer(spire, ['api', ...args, '-socketPath', socket], { asStranger: true })

  await t.test('api fetch x509: the SVID, its key and the bundle, which openssl verifies; an unregistered uid is refused', async t => {
    const written = join(dir, 'x509')
    mkdirSync(written) // spire-agent writes into a folder that exists
    const fetched = await api('fetch', 'x509', '-write', written)
    t.equal(fetched.status, 0, fetched.out)
    t.match(fetched.out, `SPIFFE ID:\t\t${ID}`, 'it names the SVID\'s ID')
    const verified = await run('openssl', ['verify', '-CAfile', join(written, 'bundle.0.pem'), join(written, 'svid.0.pem')])
    t.equal(verified.status, 0, `openssl verifies the written SVID against the written bundle: ${verified.stdout}${verified.stderr}`)
    t.match(readFileSync(join(written, 'svid.0.key'), 'utf8'), /^-----BEGIN PRIVATE KEY-----/, 'the key is PKCS#8 PEM')
    const refused = await asStranger('fetch', 'x509')
    t.not(refused.status, 0, 'an unregistered uid gets no SVID')
    t.match(refused.out, /no identity issued|PermissionDenied/i, `and is told why: ${refused.out.trim()}`)
  })

  await t.test('api fetch jwt and api validate jwt: a token for an audience, valid for it and for no other', async t => {
    const fetched = await api('fetch', 'jwt', '-audience', 'interop', '-output', 'json')
    t.equal(fetched.status, 0, fetched.out)
    const token = /"svid":\s*"([\w.-]+)"/.exec(fetched.out)?.[1] ?? ''
    t.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'a compact JWT')
    const valid = await api('validate', 'jwt', '-audience', 'interop', '-svid', token)
    t.equal(valid.status, 0, `valid for its audience: ${valid.out.trim()}`)
    t.match(valid.out, ID, 'and names its subject')
    const wrongAudience = await api('validate', 'jwt', '-audience', 'another', '-svid', token)
    t.not(wrongAudience.status, 0, `refused for another audience: ${wrongAudience.out.trim()}`)
    const refused = await asStranger('fetch', 'jwt', '-audience', 'interop')
    t.not(refused.status, 0, `an unregistered uid gets no token: ${refused.out.trim()}`)
  })

  await t.test('api watch: the first update names the SVID', async t => {
    const watch = spawn(spire, ['api', 'watch', '-socketPath', socket])
    let out = ''
    watch.stdout.setEncoding('utf8').on('data', (s: string) => { out += s })
    watch.stderr.setEncoding('utf8').on('data', (s: string) => { out += s })
    await waitFor('api watch to name the SVID', 20_000, async () => out.includes(ID) ? true : undefined).catch(() => {}) // asserted below
    watch.kill('SIGTERM')
    t.match(out, /Received 1 svid after/, 'an update arrives')
    t.match(out, ID, 'with the SVID\'s ID')
  })

  await t.test('healthcheck: healthy on the agent\'s socket, unhealthy on a socket nobody serves', async t => {
    const healthy = await run(spire, ['healthcheck', '-socketPath', socket], { timeoutMs: 30_000 })
    t.equal(healthy.status, 0, `${healthy.stdout}${healthy.stderr}`.trim())
    const nobody = await run(spire, ['healthcheck', '-socketPath', join(dir, 'nobody.sock')], { timeoutMs: 30_000 })
    t.not(nobody.status, 0, `${nobody.stdout}${nobody.stderr}`.trim())
  })
})
