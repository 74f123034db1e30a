/**
 * Issue 19's "Done when" on real network namespaces, one per machine: "plant-a" (trust domain plant-a.example) and
 * "plant-b" (plant-b.example) each run `chaperone agent run` as their own CA, a transparent sidecar and an unchanged
 * app, and serve their bundle endpoints: plant-b https_spiffe (its SVID spiffe://plant-b.example/spire/server),
 * plant-a https_web (an openssl-made Web PKI certificate for its address, whose CA plant-b's agent trusts through
 * NODE_EXTRA_CA_CERTS). plant-a federates with plant-b in its config file (bootstrapped with `bundle show --format
 * spiffe`), plant-b with plant-a at run time (`chaperone federation create --profile https_web`), after its app's
 * entry already federates with plant-a. Proves, in this order: apps call each other across trust domains through
 * both sidecars (XFCC names the other domain's app; POST denied by the policy and logged; no plaintext on the bridge);
 * an endpoint presenting the wrong SPIFFE ID is refused (endpoint_id), logged and shown; plant-b's endpoint cut
 * (iptables DROP of its port only, timed so that no CA plant-a lacks can activate meanwhile) for longer than a
 * refresh: plant-a logs and counts the failed fetches, keeps the bundle, calls go on, and it fetches again once the
 * endpoint is back; plant-b's CA rotates (90 s CAs: published at half-life, active at five sixths) and calls both
 * ways go on with no manual step, plant-a holding the newer bundle with the new CA. About 85 s. Part of
 * `npm run test:interop`.
 */
import t from 'tap'
import { X509Certificate } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { decodePem } from '../../spiffe/pem'
import { waitFor } from '../helpers/command'
import { IPTABLES } from '../helpers/netns-tools'
import { OPENSSL_MISSING } from '../helpers/openssl'
import { appToApp } from './fleet-netns-checks'
import { skipFleetNetns, startFleetNetnsStand } from './fleet-netns-stand'
import {
  ENDPOINT_PORT, callsUntil, caShown, cliOk, federatedOfApp, presentedLeaf, relationship, startPlant, startPlantWorkload, webPki
} from './federation-netns-stand'

const skip = skipFleetNetns() || (OPENSSL_MISSING ?? false)
const [A, B, C] = ['plant-a.example', 'plant-b.example', 'plant-c.example']
const CA_TTL = 90
/** Longer than a cut of plant-b's endpoint lasts (two fetches of plant-a running into their 10 s deadline, then one that succeeds). */
const CUT_BUDGET_MS = 35_000
const FAILED_KEEPING = 'federation: bundle fetch failed; keeping the last good bundle, retrying'
const POLICY = `version: 1
rules:
  - { name: plant-a-reads-plant-b, from: ["spiffe://${A}/**"], to: ["spiffe://${B}/app"], ports: [8080], http: { methods: [GET] }, action: allow }
  - { name: plant-b-reads-plant-a, from: ["spiffe://${B}/**"], to: ["spiffe://${A}/app"], ports: [8080], http: { methods: [GET] }, action: allow }
`

void t.test('two trust domains federated across network namespaces', { skip, timeout: 600_000 }, async t => {
  const startedAt = Date.now()
  const stand = await startFleetNetnsStand(t, 'fedns', ['plant-a', 'plant-b'], POLICY)
  const web = await webPki(join(stand.dir, 'web-pki'), stand.address('plant-a'))
  const b = await startPlant(t, stand, 'plant-b', {
    td: B,
    config: [`ca: { ttl: ${CA_TTL}s }`, 'svid: { x509Ttl: 30s }', 'federation:', `  bundleEndpoint: { address: 0.0.0.0:${ENDPOINT_PORT}, profile: https_spiffe }`, '  refreshHint: 4s'],
    env: { NODE_EXTRA_CA_CERTS: web.caFile }
  })
  const firstCa = await caShown(b)
  const bootstrap = join(stand.dir, 'plant-b.json')
  writeFileSync(bootstrap, await cliOk(b, ['bundle', 'show', '--format', 'spiffe']))
  const a = await startPlant(t, stand, 'plant-a', {
    td: A,
    config: ['federation:', `  bundleEndpoint: { address: 0.0.0.0:${ENDPOINT_PORT}, profile: https_web, certFile: ${web.certFile}, keyFile: ${web.keyFile} }`,
      '  minimumRefresh: 1s', '  relationships:', `    - trustDomain: ${B}`, `      bundleEndpointUrl: ${b.endpointUrl}`, '      profile: https_spiffe',
      `      endpointSpiffeId: ${b.agentId}`, `      bundleFile: ${bootstrap}`]
  })
  await Promise.all([startPlantWorkload(stand, a, b), startPlantWorkload(stand, b, a)])
  t.comment(`two plants with agents, sidecars and apps up in ${((Date.now() - startedAt) / 1000).toFixed(1)} s`)

  await t.test('the bundles cross: plant-a fetches https_spiffe from its config; plant-b, created at run time, https_web', async t => {
    const fetchedB = await waitFor('plant-a to fetch plant-b\'s bundle', 15_000, async () => {
      const r = await relationship(a, B)
      return r.last_success_at > 0 ? r : undefined
    })
    t.equal(fetchedB.source, 'config', 'plant-a\'s relationship comes from its config file')
    t.ok(fetchedB.has_bundle && fetchedB.consecutive_failures === 0, `plant-a holds plant-b's bundle, sequence ${fetchedB.bundle_sequence}`)
    t.ok((await federatedOfApp(a)).includes(B), 'and gives it to its app, whose entry federates with plant-b')

    t.notOk((await federatedOfApp(b)).includes(A), 'plant-b\'s app\'s entry federates with plant-a, whose bundle has not come yet')
    const created = await b.cli(['federation', 'create', '--trust-domain', A, '--bundle-endpoint-url', a.endpointUrl, '--profile', 'https_web'])
    t.equal(created.status, 0, `chaperone federation create … --profile https_web on plant-b, no bootstrap bundle: ${created.stderr}`)
    await waitFor('plant-b\'s app to get plant-a\'s bundle', 15_000, async () => (await federatedOfApp(b)).includes(A) ? true : undefined)
    t.pass('the bundle is served to plant-b\'s app as soon as it comes')
    const fetchedA = await relationship(b, A)
    t.match(fetchedA, { source: 'api', profile: 'https_web', has_bundle: true, bundle_sequence: (await caShown(a)).sequence, consecutive_failures: 0 },
      'fetched over Web PKI: plant-a\'s certificate for its address, its CA trusted through NODE_EXTRA_CA_CERTS')
    t.ok(b.agent.logs().some(l => l.msg === 'federation: bundle updated from the endpoint' && l.trustDomain === A), 'plant-b logs the bundle it took')
  })

  await t.test('plant-a\'s app calls plant-b\'s through both transparent sidecars; a POST is refused and logged', async t => {
    await appToApp(t, stand, a, b)
  })
  await t.test('plant-b\'s app calls plant-a\'s likewise', async t => {
    await appToApp(t, stand, b, a)
  })

  await t.test('an endpoint presenting another SPIFFE ID than the relationship names is refused (endpoint_id)', async t => {
    const wrong = `spiffe://${B}/not-the-server`
    const logsAt = a.agent.logs().length
    const created = await a.cli(['federation', 'create', '--trust-domain', C, '--bundle-endpoint-url', b.endpointUrl, '--profile', 'https_spiffe', '--endpoint-spiffe-id', wrong])
    t.equal(created.status, 0, `chaperone federation create --trust-domain ${C} … --endpoint-spiffe-id ${wrong} on plant-a: ${created.stderr}`)
    const refused = await waitFor('plant-a to log the refusal', 15_000, async () =>
      a.agent.logs().slice(logsAt).find(l => l.trustDomain === C && l.msg === 'federation: bundle fetch failed; no bundle held yet, retrying'))
    t.match(refused, { reason: 'endpoint_id', url: b.endpointUrl, err: new RegExp(`is not ${wrong}.*${b.agentId}`) }, `logged with the reason: ${String(refused.err)}`)
    const shown = await cliOk(a, ['federation', 'show', '--trust-domain', C])
    t.match(shown, /Last fetch {6}: \S+ failed \(endpoint_id\): /, 'federation show says why')
    t.match(shown, /Bundle {10}: none yet/, 'and plant-c has no bundle')
    t.match(shown, /Failures {8}: [1-9]\d* in a row; since start: endpoint_id [1-9]/, 'the refusals are counted')
    t.equal((await relationship(a, C)).has_bundle, false, 'federation show --json: has_bundle false')
    await cliOk(a, ['federation', 'delete', '--trust-domain', C])
  })

  await t.test('plant-b\'s endpoint cut for longer than a refresh: failures logged and counted, calls go on, fetched again after', async t => {
    // Calls must go on through the cut, so no CA plant-a lacks may become active in it: plant-a holds plant-b's
    // current bundle, and the next authority to be published activates only after the cut.
    await waitFor('a moment when no CA unknown to plant-a can activate during a cut', 90_000, async () => {
      const [r, ca] = await Promise.all([relationship(a, B), caShown(b)])
      return r.bundle_sequence === ca.sequence && ca.unpublishedActivatesAt - Date.now() > CUT_BUDGET_MS ? true : undefined
    })
    const rule = ['-p', 'tcp', '--dport', String(ENDPOINT_PORT), '-j', 'DROP']
    const iptables = async (args: string[]): Promise<void> => {
      const ran = await stand.topology.exec('plant-b', IPTABLES ?? 'iptables', args)
      if (ran.status !== 0) throw new Error(`iptables ${args.join(' ')} in plant-b: ${ran.stderr}`)
    }
    const logsAt = a.agent.logs().length
    await iptables(['-I', 'INPUT', ...rule])
    let cut = true
    t.teardown(async () => { if (cut) await iptables(['-D', 'INPUT', ...rule]) })
    const cutAt = Date.now()
    const during = await callsUntil(stand, [[a, b], [b, a]], waitFor('plant-a to fail twice in a row', 40_000, async () => {
      const r = await relationship(a, B)
      return r.consecutive_failures >= 2 ? r : undefined
    }))
    t.comment(`endpoint cut ${((Date.now() - cutAt) / 1000).toFixed(1)} s (plant-a polls every second): ${during.ok} calls answered, ${during.failed.length} failed`)
    t.same(during.failed, [], 'no call failed: the data path was not cut')
    t.ok(during.ok > 10, 'calls went on, both ways')
    const failedLines = a.agent.logs().slice(logsAt).filter(l => l.msg === FAILED_KEEPING && l.trustDomain === B)
    t.ok(failedLines.length >= 2, `plant-a logged each failed fetch: ${FAILED_KEEPING}`)
    t.match(failedLines[0], { reason: 'timeout', url: b.endpointUrl, heldSequence: during.value.bundle_sequence }, `with the reason: ${String(failedLines[0]?.err)}`)
    const shown = await cliOk(a, ['federation', 'show', '--trust-domain', B])
    t.match(shown, /Last fetch {6}: \S+ failed \(timeout\): /, 'federation show says the last fetch failed, and why')
    t.match(shown, /Failures {8}: (?:[2-9]|[1-9]\d+) in a row; since start: timeout (?:[2-9]|[1-9]\d+)\n/, 'and counts the failures')
    t.match(shown, `Bundle          : sequence ${during.value.bundle_sequence}, `, 'the last good bundle is kept')

    await iptables(['-D', 'INPUT', ...rule])
    cut = false
    const back = await waitFor('plant-a to fetch again', 30_000, async () => {
      const r = await relationship(a, B)
      return r.consecutive_failures === 0 ? r : undefined
    })
    t.comment(`the endpoint back, plant-a holds sequence ${back.bundle_sequence} (${((Date.now() - cutAt) / 1000).toFixed(1)} s after the cut)`)
    t.match(await cliOk(a, ['federation', 'show', '--trust-domain', B]), /Last fetch {6}: \S+ ok\n[\s\S]*Failures {8}: 0 in a row; since start: timeout (?:[2-9]|[1-9]\d+)\n/, 'the next fetch succeeds')
    const after = await stand.curl(a.host, `http://${stand.address(b.host)}:8080/after-cut`)
    t.equal(after.code, '200', 'and calls go on')
  })

  await t.test(`plant-b's CA rotates (${CA_TTL} s CAs): calls both ways go on, plant-a holds the newer bundle`, async t => {
    const activated = waitFor('plant-b to activate its next CA', (CA_TTL + 40) * 1000, async () =>
      // Not the first authority, prepared and activated at once when the CA was made: one prepared before.
      b.agent.logs().find(l => l.msg === 'CA: X.509 authority rotation' && Array.isArray(l.activated) && l.activated.length > 0 && !(l.prepared as unknown[]).includes(l.activated[0])))
    const during = await callsUntil(stand, [[a, b], [b, a]], (async () => {
      await activated
      const next = await caShown(b)
      // The sidecar's SVID, as a peer sees it: presented on plant-b's app port (redirected to its inbound listener).
      const leaf = await waitFor('plant-b\'s sidecar to present an SVID of the new CA', 30_000, async () => {
        const presented = await presentedLeaf(stand.address('plant-b'), 8080)
        return presented.verify(next.active.publicKey) ? presented : undefined
      })
      return { next: next.active, leaf }
    })())
    const { next, leaf } = during.value
    t.not(next.fingerprint256, firstCa.active.fingerprint256, 'plant-b\'s active CA (chaperone ca show) is a new one')
    t.match(leaf.subjectAltName, `URI:${b.appId}`, `plant-b's sidecar presents its app's SVID, issued by the new CA (serial ${next.serialNumber})`)
    t.notOk(leaf.verify(firstCa.active.publicKey), 'not by the first')
    t.comment(`${during.ok} calls answered during the rotation, ${during.failed.length} failed`)
    t.same(during.failed, [], 'no call failed while plant-b rotated')
    t.ok(during.ok >= 2, 'calls went on, both ways')
    for (const [from, to] of [[a, b], [b, a]] as const) {
      const after = await stand.curl(from.host, `http://${stand.address(to.host)}:8080/after-rotation`)
      t.equal(after.code, '200', `${from.host} → ${to.host} after the rotation: ${after.stderr}`)
      t.match(after.body, `;URI=${from.appId}`)
    }
    const held = decodePem(await cliOk(a, ['bundle', 'show', '--id', `spiffe://${B}`])).map(block => new X509Certificate(block.der).fingerprint256)
    t.ok(held.includes(next.fingerprint256), 'plant-a\'s bundle of plant-b holds the new CA')
    const shown = Number(/Bundle {10}: sequence (\d+), /.exec(await cliOk(a, ['federation', 'show', '--trust-domain', B]))?.[1])
    t.ok(shown > firstCa.sequence, `plant-a's federation show: sequence ${shown}, was ${firstCa.sequence} at the start`)
    t.ok(a.agent.logs().some(l => l.msg === 'federation: bundle updated from the endpoint' && l.trustDomain === B && Number(l.sequence) > firstCa.sequence),
      'plant-a logged taking the newer bundle, by itself')
  })

  t.comment(`the whole test took ${((Date.now() - startedAt) / 1000).toFixed(1)} s`)
})
