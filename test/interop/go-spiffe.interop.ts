/**
 * go-spiffe v2.9.0's Workload API client (our probe program, test/interop/go-spiffe-probe) against the Chaperone
 * agent: the calls services written with go-spiffe make, the socket address forms it accepts, updates it must see
 * (a rotation, an entry deleted), and the status an unregistered caller gets. Part of `npm run test:interop`.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { waitFor } from '../helpers/command'
import { startAgentStand, TRUST_DOMAIN } from './agent-stand'
import { interopSkip, spiffeProbe } from './peers'

const skip = interopSkip()
const ID = `spiffe://${TRUST_DOMAIN}/go-spiffe`
const SHORT_LIVED = `spiffe://${TRUST_DOMAIN}/go-spiffe-short-lived`

interface ProbeResult { ids?: string[], serials?: string[], bundles?: string[], id?: string, token?: string, validatedId?: string, error?: string, code?: string }

void t.test('go-spiffe v2.9.0 workloadapi against the Chaperone agent', { skip, timeout: 1_800_000 }, async t => {
  const builtAt = Date.now()
  const built = await spiffeProbe()
  t.comment(`go-spiffe probe ready in ${((Date.now() - builtAt) / 1000).toFixed(1)} s`)
  const stand = await startAgentStand(t, ID)
  const probe = stand.placePeer(built, 'spiffe-probe')
  const endpoint = `unix://${stand.socket}`
  const call = async (args: string[], opts: { asStranger?: boolean, endpoint?: string } = {}): Promise<ProbeResult & { status: number | null }> => {
    const result = await stand.runPeer(probe, args, { asStranger: opts.asStranger, env: { SPIFFE_ENDPOINT_SOCKET: opts.endpoint ?? endpoint } })
    const last = result.stdout.trim().split('\n').at(-1) ?? ''
    return { status: result.status, ...(last.startsWith('{') ? JSON.parse(last) as ProbeResult : { error: result.out }) }
  }

  await t.test('FetchX509Context at both socket forms go-spiffe accepts; an unregistered uid gets PermissionDenied', async t => {
    for (const form of [`unix://${stand.socket}`, `unix:${stand.socket}`]) {
      const fetched = await call(['x509'], { endpoint: form })
      t.equal(fetched.status, 0, `${form}: ${fetched.error ?? 'answered'}`)
      t.same(fetched.ids, [ID], `${form}: the SVID`)
      t.same(fetched.bundles, [TRUST_DOMAIN], `${form}: the bundle`)
    }
    const refused = await call(['x509'], { asStranger: true })
    t.equal(refused.code, 'PermissionDenied', `refused: ${refused.error ?? ''}`)
  })

  await t.test('FetchX509Bundles and FetchJWTBundles: the trust domain\'s bundles', async t => {
    t.same((await call(['x509-bundles'])).bundles, [TRUST_DOMAIN], 'X.509 bundles')
    t.same((await call(['jwt-bundles'])).bundles, [TRUST_DOMAIN], 'JWT bundles')
    t.equal((await call(['x509-bundles'], { asStranger: true })).code, 'PermissionDenied', 'none for an unregistered uid')
  })

  await t.test('FetchJWTSVID, then ValidateJWTSVID: valid for its audience, refused for another', async t => {
    const fetched = await call(['jwt', 'interop'])
    t.equal(fetched.status, 0, fetched.error ?? 'fetched and validated')
    t.equal(fetched.id, ID, 'the token is for the workload\'s ID')
    t.equal(fetched.validatedId, ID, 'and the agent validates it for its audience')
    const other = await call(['validate', 'another', fetched.token ?? ''])
    t.not(other.status, 0, `refused for another audience: ${other.error ?? ''}`)
    t.equal((await call(['jwt', 'interop'], { asStranger: true })).code, 'PermissionDenied', 'none for an unregistered uid')
  })

  await t.test('WatchX509Context sees a rotation and an entry deleted', async t => {
    const shortLived = stand.agent.store.createEntry({ spiffeId: SHORT_LIVED, selectors: [`unix:uid:${process.getuid?.() ?? 0}`], x509SvidTtl: 4 })
    const watch = spawn(probe, ['watch', '1000'], { env: { ...process.env, SPIFFE_ENDPOINT_SOCKET: endpoint } })
    t.teardown(() => { watch.kill('SIGKILL') })
    const updates: ProbeResult[] = []
    createInterface({ input: watch.stdout }).on('line', line => { updates.push(JSON.parse(line) as ProbeResult) })
    const until = async (what: string, ok: () => boolean): Promise<void> => {
      await waitFor(`an update ${what} (so far: ${updates.length})`, 30_000, async () => ok() ? true : undefined)
    }
    const serialOf = (u: ProbeResult | undefined, id: string): string | undefined => u?.serials?.[u.ids?.indexOf(id) ?? -1]
    await until('at all', () => updates.length > 0)
    t.same(updates[0].ids, [ID, SHORT_LIVED], 'the first update has both SVIDs, the default first')
    const firstSerial = serialOf(updates[0], SHORT_LIVED)
    await until('with the short-lived SVID renewed', () => updates.some(u => (serialOf(u, SHORT_LIVED) ?? firstSerial) !== firstSerial))
    t.pass('a rotation arrives as an update')
    stand.agent.store.deleteEntry(shortLived.id)
    await until('without the deleted entry', () => updates.at(-1)?.ids?.join() === ID)
    t.pass('the deleted entry\'s SVID leaves the next update')
  })
})
