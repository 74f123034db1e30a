import t from 'tap'
import { WorkloadClient } from '../../../spiffe/workload-client'
import type { EntryMessage } from '../../../agent/spire-api/messages'
import { CODE, TD, entry, id, startSpireApiStand } from './fixtures/spire-api-stand'

// Issue 17's parent rule, end to end: entries registered through SPIRE's API are issued by our Workload API when
// they are parented on this agent's ID, or on the SPIFFE ID of an entry it serves, recursively (SPIRE's rule for
// one agent); others are stored and never issued, as are entries for an SVIDStore. This test process is the
// workload: the kernel says its uid.

const uid = process.getuid?.() ?? 0

void t.test('served entries – a workload gets the entries parented on this agent and their descendants, no others', async t => {
  const stand = await startSpireApiStand(t)
  const mine = [{ type: 'unix', value: `uid:${uid}` }]
  const specs: Array<[string, Partial<EntryMessage>]> = [
    ['/direct', {}],
    ['/elsewhere', { parent_id: id('/spire/agent/x509pop/another-device') }],
    ['/child', { parent_id: id('/direct') }],
    ['/grandchild', { parent_id: id('/child') }],
    ['/orphan', { parent_id: id('/elsewhere') }],
    ['/for-svid-store', { store_svid: true }],
    ['/loop-a', { parent_id: id('/loop-b') }],
    ['/loop-b', { parent_id: id('/loop-a') }],
    ['/not-this-workload', { selectors: [{ type: 'unix', value: 'uid:64999' }] }],
    ['/via-another-workload', { parent_id: id('/not-this-workload') }]
  ]
  const { results } = await stand.call<{ results: Array<{ status: { code: number }, entry: EntryMessage }> }>('BatchCreateEntry', {
    entries: specs.map(([path, fields]) => entry(stand, path, { selectors: mine, ...fields }))
  })
  t.same(results.map(r => r.status.code), specs.map(() => CODE.OK), 'all stored')
  const client = new WorkloadClient(`unix://${stand.dir}/workload.sock`)
  t.teardown(() => client.close())
  const issued = async (): Promise<string[]> => (await client.fetchX509Svid()).svids.map(svid => svid.spiffeId).sort()
  t.same(await issued(), ['/child', '/direct', '/grandchild', '/via-another-workload'].map(p => `spiffe://${TD}${p}`),
    'the agent\'s own entries and their descendants (also under an entry of another workload); not another agent\'s, not an SVIDStore\'s, not a cycle')

  const updates: string[][] = []
  const stop = client.watchX509Svids(update => updates.push(update.svids.map(svid => svid.spiffeId).sort()), () => {})
  t.teardown(stop)
  const direct = results[0].entry.id
  while (updates.length === 0) await new Promise(resolve => setTimeout(resolve, 20))
  const { results: deleted } = await stand.call<{ results: Array<{ status: { code: number } }> }>('BatchDeleteEntry', { ids: [direct] })
  t.equal(deleted[0].status.code, CODE.OK)
  t.same(await issued(), [`spiffe://${TD}/via-another-workload`], 'deleting an entry ends its identity, and its descendants\'')
  for (let i = 0; i < 250 && updates.length < 2; i++) await new Promise(resolve => setTimeout(resolve, 20))
  t.same(updates.at(-1), [`spiffe://${TD}/via-another-workload`], 'an open stream is told at once')
  await stand.call('BatchDeleteEntry', { ids: [results[9].entry.id] })
  await t.rejects(client.fetchX509Svid(), { code: 'ERR_WORKLOAD_API_DENIED' }, 'and its parent\'s deletion ends the last one: no identity issued')
})
