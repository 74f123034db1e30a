import t from 'tap'
import type { Test } from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { credentials, Metadata, Server, ServerCredentials, status } from '@grpc/grpc-js'
import type { ClientDuplexStream, ServiceError } from '@grpc/grpc-js'
import pino from 'pino'
import protobuf from 'protobufjs'
import { RegistrationStore } from '../../../agent/store'
import type { RegistrationEntry } from '../../../agent/store'
import { EntryService } from '../../../agent/spire-api/grpc-proto'
import { SpireApiError } from '../../../agent/spire-api/api-error'
import { syncAuthorizedEntries } from '../../../agent/fleet/sync-authorized-entries'
import { AGENT_DENIAL_REASONS, permissionDenied } from '../../../agent/fleet/permission-denied'
import { parseTrustDomain } from '../../../spiffe/id'

// Entry/SyncAuthorizedEntries over real gRPC on a Unix socket, with a page of 3 entries: the two ways SPIRE's server
// answers (whole, or revisions then the entries asked for) and the requests it refuses.

const TD = parseTrustDomain('fleet.example')
const PAGE = 3

interface SyncResponse { entry_revisions: Array<{ id: string, revision_number: number, created_at: number }>, entries: Array<{ id: string, spiffe_id: { path: string } }>, more: boolean }
interface Ended { responses: SyncResponse[], error?: ServiceError }

async function stand (t: Test, count: number, entriesFor?: () => RegistrationEntry[]): Promise<{ entries: RegistrationEntry[], open: () => ClientDuplexStream<object, SyncResponse> }> {
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-sync-'))
  const store = RegistrationStore.open({ dataDir: join(dir, 'data'), trustDomain: TD, logger: pino({ level: 'silent' }) })
  const entries = Array.from({ length: count }, (_, i) => store.createEntry({ spiffeId: `spiffe://${TD.name}/app/${i}`, selectors: [`unix:uid:${1000 + i}`] }))
  const server = new Server()
  server.addService(EntryService().service, {
    SyncAuthorizedEntries: syncAuthorizedEntries({ ctx: { trustDomain: TD.name, agentId: store.agentId }, pageSize: PAGE, entriesFor: entriesFor ?? (() => entries) })
  })
  const socket = join(dir, 'sync.sock')
  await new Promise<void>((resolve, reject) => { server.bindAsync(`unix:${socket}`, ServerCredentials.createInsecure(), err => { if (err === null) resolve(); else reject(err) }) })
  const client = new (EntryService())(`unix:${socket}`, credentials.createInsecure())
  t.teardown(() => {
    client.close()
    server.forceShutdown()
    store.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const open = (): ClientDuplexStream<object, SyncResponse> => (client as unknown as { SyncAuthorizedEntries: () => ClientDuplexStream<object, SyncResponse> }).SyncAuthorizedEntries()
  return { entries, open }
}

/** Sends `requests`, each after the responses to the one before (until one with `more` unset), then half-closes. */
async function converse (call: ClientDuplexStream<object, SyncResponse>, requests: object[]): Promise<Ended> {
  const responses: SyncResponse[] = []
  return await new Promise(resolve => {
    let next = 0
    const send = (): void => {
      if (next < requests.length) call.write(requests[next++])
      else call.end()
    }
    call.on('data', (response: SyncResponse) => {
      responses.push(response)
      if (!response.more) send()
    })
    call.on('error', (error: ServiceError) => { resolve({ responses, error }) })
    call.on('end', () => { resolve({ responses }) })
    send()
  })
}

const FULL_MASK = { output_mask: null, ids: [] }

void t.test('a page or fewer: every entry whole in one response, then the end', async t => {
  const { entries, open } = await stand(t, PAGE)
  const { responses, error } = await converse(open(), [FULL_MASK])
  t.equal(error, undefined)
  t.equal(responses.length, 1)
  t.same(responses[0].entries.map(e => e.id).sort(), entries.map(e => e.id).sort())
  t.same(responses[0].entry_revisions, [])
  t.equal(responses[0].more, false)
})

void t.test('more than a page: revisions a page at a time, then the entries asked for, a page at a time', async t => {
  const { entries, open } = await stand(t, 7)
  const wanted = [entries[6].id, entries[0].id, 'no-such-entry', entries[3].id, entries[1].id, entries[0].id]
  const { responses, error } = await converse(open(), [FULL_MASK, { ids: wanted }, { ids: [entries[2].id] }])
  t.equal(error, undefined, 'ended when the client closed its side')
  const revisions = responses.filter(r => r.entry_revisions.length > 0)
  t.same(revisions.map(r => [r.entry_revisions.length, r.more]), [[3, true], [3, true], [1, false]], 'revision pages of 3, more on all but the last')
  t.same(revisions.flatMap(r => r.entry_revisions).map(r => r.id).sort(), entries.map(e => e.id).sort(), 'every authorized entry, once')
  t.match(revisions[0].entry_revisions[0], { revision_number: Number, created_at: Number })
  const full = responses.filter(r => r.entry_revisions.length === 0)
  const known = [...new Set(wanted)].filter(id => id !== 'no-such-entry').sort()
  t.same(full.map(r => [r.entries.map(e => e.id), r.more]), [
    [known.slice(0, 3), true],
    [known.slice(3), false],
    [[entries[2].id], false]
  ], 'the known IDs asked for, each once, sorted, in pages; an unknown one left out')
})

void t.test('refused as SPIRE refuses', async t => {
  const { open } = await stand(t, 1)
  t.match((await converse(open(), [{ ids: ['x'] }])).error, { code: status.INVALID_ARGUMENT, details: 'specifying IDs on initial request is not supported' })
  t.match((await converse(open(), [{ output_mask: { spiffe_id: true, revision_number: false } }])).error, { code: status.INVALID_ARGUMENT, details: 'revision number cannot be masked' })
  const denied = await stand(t, 1, () => { throw new SpireApiError(status.PERMISSION_DENIED, 'agent is banned') })
  t.match((await converse(denied.open(), [FULL_MASK])).error, { code: status.PERMISSION_DENIED, details: 'agent is banned' }, 'the caller\'s refusal, as it was thrown')
})

void t.test('a refused agent is told SPIRE\'s reason in grpc-status-details-bin', async t => {
  const root = protobuf.Root.fromJSON({
    nested: {
      Status: { fields: { code: { type: 'int32', id: 1 }, message: { type: 'string', id: 2 }, details: { rule: 'repeated', type: 'Any', id: 3 } } },
      Any: { fields: { type_url: { type: 'string', id: 1 }, value: { type: 'bytes', id: 2 } } },
      PermissionDeniedDetails: { fields: { reason: { type: 'int32', id: 1 } } }
    }
  })
  for (const reason of Object.keys(AGENT_DENIAL_REASONS) as Array<keyof typeof AGENT_DENIAL_REASONS>) {
    const denial = permissionDenied(`refused: ${reason}`, reason)
    t.equal(denial.code, status.PERMISSION_DENIED)
    t.ok(denial.metadata instanceof Metadata)
    const bin = denial.metadata.get('grpc-status-details-bin')[0] as Buffer
    const decoded = root.lookupType('Status').toObject(root.lookupType('Status').decode(bin)) as { code: number, message: string, details: Array<{ type_url: string, value: Uint8Array }> }
    t.match(decoded, { code: status.PERMISSION_DENIED, message: `refused: ${reason}` })
    t.equal(decoded.details[0].type_url, 'type.googleapis.com/spire.api.types.PermissionDeniedDetails')
    t.same(root.lookupType('PermissionDeniedDetails').toObject(root.lookupType('PermissionDeniedDetails').decode(decoded.details[0].value)), { reason: AGENT_DENIAL_REASONS[reason] }, reason)
  }
})
