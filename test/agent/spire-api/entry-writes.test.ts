import t from 'tap'
import type { EntryMessage, StatusMessage } from '../../../agent/spire-api/messages'
import { CODE, TD, entry, id, splitId, startSpireApiStand } from './fixtures/spire-api-stand'
import type { SpireApiStand } from './fixtures/spire-api-stand'

// SPIRE's server Entry API on the agent's SPIRE-compatible socket, called as SPIRE's clients call it: each batch
// item gets its own status in request order, with SPIRE's codes and messages (spire-compat.md §1.2).

interface Results { results: Array<{ status: StatusMessage, entry: EntryMessage | null }> }
interface DeleteResults { results: Array<{ status: StatusMessage, id: string }> }

let stand: SpireApiStand
t.before(async () => {
  stand = await startSpireApiStand(t)
  // A bundle for other.example, so entries may federate with it (SPIRE requires one).
  stand.agent.store.setFederatedBundle({ trustDomain: 'other.example', format: 'pem', bundle: stand.agent.ca.bundle().x509.toPem() })
})

const create = async (...entries: Array<Partial<EntryMessage>>): Promise<Results['results']> => (await stand.call<Results>('BatchCreateEntry', { entries })).results
const agentId = (): string => stand.agent.store.agentId

void t.test('BatchCreateEntry – every field SPIRE stores is stored and echoed back, then read back by GetEntry', async t => {
  const before = Math.floor(Date.now() / 1000)
  const sent = entry(stand, '/full', {
    id: 'full-entry.1',
    selectors: [{ type: 'unix', value: 'uid:1001' }, { type: 'unix', value: 'gid:50' }],
    x509_svid_ttl: 3600,
    jwt_svid_ttl: 60,
    federates_with: ['other.example'],
    admin: true,
    downstream: true,
    expires_at: 2_000_000_000,
    dns_names: ['api.plant.example', '*.api.plant.example'],
    store_svid: true,
    hint: 'internal'
  })
  const [result] = await create(sent)
  t.same(result.status, { code: CODE.OK, message: 'OK' })
  const created = result.entry as EntryMessage
  t.same({ ...created, created_at: 0 }, {
    ...sent,
    // SPIRE returns them as stored; ours are sorted by type, then value.
    selectors: [{ type: 'unix', value: 'gid:50' }, { type: 'unix', value: 'uid:1001' }],
    revision_number: 0,
    created_at: 0
  }, 'every field as sent, revision 0')
  t.ok(created.created_at >= before && created.created_at <= Math.floor(Date.now() / 1000) + 1, 'created_at is now')
  t.same(await stand.call('GetEntry', { id: 'full-entry.1' }), created, 'GetEntry reads the same entry')
})

void t.test('BatchCreateEntry – spire-controller-manager\'s probe (jwt_svid_ttl, hint, store_svid) comes back whole', async t => {
  const [result] = await create({
    spiffe_id: id('/spire-controller-manager/unsupported-fields-test'),
    parent_id: id('/spire-controller-manager/unsupported-fields-test'),
    selectors: [{ type: 'spiffe_id', value: 'spiffe://plant.example/spire-controller-manager/unsupported-fields-test' }],
    jwt_svid_ttl: 60,
    hint: 'hint',
    store_svid: true
  })
  t.equal(result.status.code, CODE.OK, result.status.message)
  t.match(result.entry, { jwt_svid_ttl: 60, hint: 'hint', store_svid: true, parent_id: id('/spire-controller-manager/unsupported-fields-test') })
  const [deleted] = (await stand.call<DeleteResults>('BatchDeleteEntry', { ids: [result.entry?.id] })).results
  t.same(deleted.status, { code: CODE.OK, message: 'OK' }, 'and is deleted again')
})

void t.test('BatchCreateEntry – results in request order: created, refused, similar (with the existing entry), custom IDs', async t => {
  const results = await create(
    entry(stand, '/order/a'),
    entry(stand, '/order/b', { selectors: [] }),
    entry(stand, '/order/a', { hint: 'another hint, same identity' }),
    entry(stand, '/order/c', { id: 'custom-c' }),
    entry(stand, '/order/d', { id: 'custom-c' }),
    entry(stand, '/order/e', { federates_with: ['nowhere.example'] }),
    entry(stand, '/order/f', { selectors: [{ type: 'k8s', value: 'ns:default' }] })
  )
  t.same(results.map(r => r.status), [
    { code: CODE.OK, message: 'OK' },
    { code: CODE.INVALID_ARGUMENT, message: 'failed to convert entry: selector list is empty' },
    { code: CODE.ALREADY_EXISTS, message: 'similar entry already exists' },
    { code: CODE.OK, message: 'OK' },
    { code: CODE.ALREADY_EXISTS, message: 'failed to create entry: datastore-sql: UNIQUE constraint failed: registered_entries.entry_id' },
    { code: CODE.OK, message: 'OK' },
    { code: CODE.OK, message: 'OK' }
  ])
  t.equal(results[2].entry?.id, results[0].entry?.id, 'the similar entry is the one that exists')
  t.equal(results[2].entry?.hint, '', 'as it is, not as sent')
  t.equal(results[3].entry?.id, 'custom-c', 'a custom ID is kept')
  t.match(results[0].entry?.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'otherwise a UUIDv4')
  t.same(results[6].entry?.selectors, [{ type: 'k8s', value: 'ns:default' }], 'a selector of a type this agent does not attest is stored, as SPIRE stores it')
  t.same(results[5].entry?.federates_with, ['nowhere.example'], 'an entry may federate with a trust domain whose bundle is still to come (SPIRE refuses it)')
  for (const i of [1, 4]) t.equal(results[i].entry, null, `a refused entry (${i}) comes back without an entry`)
  t.same(stand.agent.store.listEntries().filter(e => e.spiffeId.includes('/order/')).map(e => e.spiffeId).sort(),
    ['a', 'c', 'e', 'f'].map(n => `spiffe://${TD}/order/${n}`), 'only the created ones are stored')
})

void t.test('BatchCreateEntry – SPIRE\'s validation, each in its words and code; nothing refused is stored', async t => {
  const long = 'h'.repeat(1025)
  const cases: Array<[string, Partial<EntryMessage>, number, string | RegExp]> = [
    ['no parent', { parent_id: null }, CODE.INVALID_ARGUMENT, 'failed to convert entry: invalid parent ID: request must specify SPIFFE ID'],
    ['parent elsewhere', { parent_id: id('/x', 'other.example') }, CODE.INVALID_ARGUMENT, 'failed to convert entry: invalid parent ID: "spiffe://other.example/x" is not a member of trust domain "plant.example"'],
    ['parent without path', { parent_id: id('') }, CODE.INVALID_ARGUMENT, 'failed to convert entry: invalid parent ID: "spiffe://plant.example" is not a member of trust domain "plant.example"; path is empty'],
    ['no SPIFFE ID', { spiffe_id: null }, CODE.INVALID_ARGUMENT, 'failed to convert entry: invalid spiffe ID: request must specify SPIFFE ID'],
    ['reserved path', { spiffe_id: id('/spire/agent/x') }, CODE.INVALID_ARGUMENT, 'failed to convert entry: invalid spiffe ID: "spiffe://plant.example/spire/agent/x" is not a workload in trust domain "plant.example"; path is in the reserved namespace'],
    ['/spire itself', { spiffe_id: id('/spire') }, CODE.INVALID_ARGUMENT, /path is in the reserved namespace$/],
    ['bad path character', { spiffe_id: id('/a b') }, CODE.INVALID_ARGUMENT, 'failed to convert entry: invalid spiffe ID: path segment characters are limited to letters, numbers, dots, dashes, and underscores'],
    ['path without slash', { spiffe_id: id('app') }, CODE.INVALID_ARGUMENT, 'failed to convert entry: invalid spiffe ID: path must have a leading slash'],
    ['trailing slash', { spiffe_id: id('/app/') }, CODE.INVALID_ARGUMENT, 'failed to convert entry: invalid spiffe ID: path cannot have a trailing slash'],
    ['uppercase trust domain', { spiffe_id: id('/app', 'Plant.example') }, CODE.INVALID_ARGUMENT, 'failed to convert entry: invalid spiffe ID: trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores'],
    ['non-ASCII DNS name', { dns_names: ['bücher.example'] }, CODE.INVALID_ARGUMENT, 'failed to convert entry: invalid DNS name: name must be ascii'],
    ['wildcard inside', { dns_names: ['a.*.example'] }, CODE.INVALID_ARGUMENT, 'failed to convert entry: invalid DNS name: wildcard must be first label'],
    ['two wildcards', { dns_names: ['*.*.example'] }, CODE.INVALID_ARGUMENT, 'failed to convert entry: invalid DNS name: too many wildcards'],
    ['trailing dot', { dns_names: ['example.'] }, CODE.INVALID_ARGUMENT, 'failed to convert entry: invalid DNS name: domain ends with dot'],
    ['bad trust domain to federate with', { federates_with: ['Bad TD'] }, CODE.INVALID_ARGUMENT, 'failed to convert entry: invalid federated trust domain: trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores'],
    ['no selectors', { selectors: [] }, CODE.INVALID_ARGUMENT, 'failed to convert entry: selector list is empty'],
    ['selector without type', { selectors: [{ type: '', value: 'x' }] }, CODE.INVALID_ARGUMENT, 'failed to convert entry: missing selector type'],
    ['":" in a selector type', { selectors: [{ type: 'unix:uid', value: '1' }] }, CODE.INVALID_ARGUMENT, 'failed to convert entry: selector type contains \':\''],
    ['selector without value', { selectors: [{ type: 'unix', value: '' }] }, CODE.INVALID_ARGUMENT, 'failed to convert entry: missing selector value'],
    ['hint too long', { hint: long }, CODE.INVALID_ARGUMENT, 'failed to convert entry: hint is too long, max length is 1024 characters'],
    ['store_svid over two selector types', { store_svid: true, selectors: [{ type: 'unix', value: 'uid:1' }, { type: 'docker', value: 'image_id:x' }] }, CODE.INVALID_ARGUMENT,
      'failed to create entry: datastore-validation: invalid registration entry: selector types must be the same when store SVID is enabled'],
    ['bad entry ID', { id: 'bad id!' }, CODE.INVALID_ARGUMENT, 'failed to create entry: datastore-validation: invalid registration entry: entry ID contains invalid characters'],
    ['long entry ID', { id: 'i'.repeat(256) }, CODE.INVALID_ARGUMENT, 'failed to create entry: datastore-validation: invalid registration entry: entry ID too long'],
    ['negative X509-SVID TTL', { x509_svid_ttl: -1 }, CODE.INVALID_ARGUMENT, 'failed to create entry: datastore-validation: invalid registration entry: X509SvidTtl is not set'],
    ['negative JWT-SVID TTL', { jwt_svid_ttl: -1 }, CODE.INVALID_ARGUMENT, 'failed to create entry: datastore-validation: invalid registration entry: JwtSvidTtl is not set'],
    ['TTL over a year (our limit)', { x509_svid_ttl: 365 * 86400 + 1 }, CODE.INVALID_ARGUMENT, /^failed to create entry: x509SvidTtl must be a positive whole number of seconds, at most 31536000/]
  ]
  const results = await create(...cases.map(([, fields], i) => entry(stand, `/invalid/${i}`, fields)))
  cases.forEach(([name, , code, message], i) => {
    t.equal(results[i].status.code, code, name)
    t.match(results[i].status.message, typeof message === 'string' ? new RegExp(`^${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) : message, name)
  })
  t.same(stand.agent.store.listEntries().filter(e => e.spiffeId.includes('/invalid/')), [], 'none of them was stored')
})

void t.test('parent IDs – this agent\'s ID is kept as "no parent" and shown as the agent\'s ID; other parents as they are', async t => {
  const [onAgent, onOther] = await create(entry(stand, '/parents/on-agent'), entry(stand, '/parents/on-other', { parent_id: id('/workload/gateway') }))
  t.same(onAgent.entry?.parent_id, splitId(agentId()))
  t.equal(stand.agent.store.getEntry(onAgent.entry?.id ?? '')?.parentId, null, 'stored without a parent: served by this agent')
  t.equal(stand.agent.store.getEntry(onOther.entry?.id ?? '')?.parentId, `spiffe://${TD}/workload/gateway`)
  const admin = stand.agent.store.createEntry({ spiffeId: `spiffe://${TD}/parents/from-admin`, selectors: ['unix:uid:1002'] })
  t.same((await stand.call<EntryMessage>('GetEntry', { id: admin.id })).parent_id, splitId(agentId()), 'an entry registered without a parent shows the agent\'s ID')
  t.match(agentId(), new RegExp(`^spiffe://${TD.replace('.', '\\.')}/spire/agent/chaperone/[0-9a-f]{32}$`), 'the agent ID is in SPIRE\'s agent namespace')
  const [similar] = await create(entry(stand, '/parents/from-admin', { selectors: [{ type: 'unix', value: 'uid:1002' }] }))
  t.same([similar.status.code, similar.entry?.id], [CODE.ALREADY_EXISTS, admin.id], 'so the admin API\'s entry and SPIRE\'s are the same identity')
})

void t.test('GetEntry – a missing ID, an unknown one, and an output mask', async t => {
  const [made] = await create(entry(stand, '/get', { hint: 'h', admin: true, x509_svid_ttl: 60 }))
  t.same(await stand.failure('GetEntry', { id: '' }), { code: CODE.INVALID_ARGUMENT, details: 'missing ID' })
  t.same(await stand.failure('GetEntry', { id: 'no-such-entry' }), { code: CODE.NOT_FOUND, details: 'entry not found' })
  const masked = await stand.call<EntryMessage>('GetEntry', { id: made.entry?.id, output_mask: { spiffe_id: true, hint: true } })
  t.same(masked, {
    id: made.entry?.id, spiffe_id: id('/get'), hint: 'h', parent_id: null, selectors: [], x509_svid_ttl: 0, federates_with: [], admin: false,
    downstream: false, expires_at: 0, dns_names: [], revision_number: 0, store_svid: false, jwt_svid_ttl: 0, created_at: 0
  }, 'the ID and the masked fields, every other field zero')
})

void t.test('BatchUpdateEntry – without an input mask the whole entry is replaced; with one, only its fields', async t => {
  const [made] = await create(entry(stand, '/update', {
    x509_svid_ttl: 600, jwt_svid_ttl: 60, hint: 'before', admin: true, downstream: true, dns_names: ['a.plant.example'],
    federates_with: ['other.example'], expires_at: 2_000_000_000
  }))
  const original = made.entry as EntryMessage
  const update = async (e: Partial<EntryMessage>, inputMask?: Partial<Record<keyof EntryMessage, boolean>>): Promise<Results['results'][number]> =>
    (await stand.call<Results>('BatchUpdateEntry', { entries: [e], ...inputMask === undefined ? {} : { input_mask: inputMask } })).results[0]

  const replaced = await update({ id: original.id, spiffe_id: id('/update/renamed'), parent_id: original.parent_id, selectors: [{ type: 'unix', value: 'uid:7' }] })
  t.same(replaced.status, { code: CODE.OK, message: 'OK' })
  t.same(replaced.entry, {
    ...original,
    spiffe_id: id('/update/renamed'), selectors: [{ type: 'unix', value: 'uid:7' }],
    x509_svid_ttl: 0, jwt_svid_ttl: 0, hint: '', admin: false, downstream: false, dns_names: [], federates_with: [], expires_at: 0,
    revision_number: 1
  }, 'every field not sent is back to its default; the revision goes up, the ID and created_at stay')

  const hinted = await update({ id: original.id, hint: 'only this', spiffe_id: null, selectors: [], x509_svid_ttl: -5 }, { hint: true })
  t.same(hinted.entry, { ...replaced.entry, hint: 'only this', revision_number: 2 }, 'the masked field only; the others sent are ignored, even invalid ones')
  t.same(await stand.call('GetEntry', { id: original.id }), hinted.entry, 'as stored')

  const results = (await stand.call<Results>('BatchUpdateEntry', {
    entries: [
      { ...hinted.entry, id: 'no-such-entry' },
      { ...hinted.entry, spiffe_id: null, id: 'no-such-entry' },
      { ...hinted.entry, x509_svid_ttl: -1 },
      { ...hinted.entry, federates_with: ['nowhere.example'] },
      { ...hinted.entry, hint: 'again' }
    ],
    output_mask: { hint: true, revision_number: true }
  })).results
  t.same(results.map(r => r.status), [
    { code: CODE.NOT_FOUND, message: 'failed to update entry' },
    { code: CODE.INVALID_ARGUMENT, message: 'failed to convert entry: invalid spiffe ID: request must specify SPIFFE ID' },
    { code: CODE.INVALID_ARGUMENT, message: 'failed to update entry: datastore-validation: invalid registration entry: X509SvidTtl is not set' },
    { code: CODE.OK, message: 'OK' },
    { code: CODE.OK, message: 'OK' }
  ], 'each in request order; the conversion is checked before the entry is looked up; a trust domain without a bundle is accepted')
  t.match(results[3].entry, { id: original.id, revision_number: 3 }, 'the update federating with a trust domain whose bundle is still to come is made')
  t.match(results[4].entry, { id: original.id, hint: 'again', revision_number: 4, spiffe_id: null, selectors: [] }, 'the output mask applies')

  const [other] = await create(entry(stand, '/update/other'))
  const clash = await update({ ...other.entry, spiffe_id: id('/update/renamed'), selectors: [{ type: 'unix', value: 'uid:7' }] })
  t.equal(clash.status.code, CODE.ALREADY_EXISTS, 'an update that would make two alike is refused here (SPIRE lets it through)')
  t.match(clash.status.message, /^failed to update entry: entry .* already gives spiffe:\/\/plant\.example\/update\/renamed/)
})

void t.test('BatchDeleteEntry – per-ID results in request order', async t => {
  const [made] = await create(entry(stand, '/delete'))
  const ids = [made.entry?.id ?? '', '', 'no-such-entry', made.entry?.id ?? '']
  t.same((await stand.call<DeleteResults>('BatchDeleteEntry', { ids })).results, [
    { status: { code: CODE.OK, message: 'OK' }, id: ids[0] },
    { status: { code: CODE.INVALID_ARGUMENT, message: 'missing entry ID' }, id: '' },
    { status: { code: CODE.NOT_FOUND, message: 'entry not found' }, id: 'no-such-entry' },
    { status: { code: CODE.NOT_FOUND, message: 'entry not found' }, id: ids[0] }
  ])
  t.same(await stand.failure('GetEntry', { id: ids[0] }), { code: CODE.NOT_FOUND, details: 'entry not found' }, 'it is gone')
})
