import t from 'tap'
import { MAX_STATUS_DETAILS } from '../../agent/status-details'
import { startMesh } from '../helpers/mesh'

// The admin API refusing inputs of a megabyte: their messages echo what was sent, and a status message that long
// would not reach the client at all (grpc-js refuses the trailer and the call hangs to its deadline). Refused at
// once, the message cut, and the agent still answering.

void t.test('admin API – a megabyte selector or trust domain is refused at once, its message cut; the agent answers on', async t => {
  const mesh = await startMesh('version: 1\nrules: []\n')
  t.teardown(mesh.close)
  const huge = 'b'.repeat(1 << 20)
  const refusals: Array<[string, () => Promise<unknown>]> = [
    ['a selector', async () => await mesh.admin.createEntry({ spiffe_id: 'spiffe://plant.example/x', parent_id: '', selectors: [`unix:${huge}`] })],
    ['a federated trust domain', async () => await mesh.admin.setFederatedBundle(huge, 'pem', 'x')]
  ]
  for (const [what, call] of refusals) {
    const started = Date.now()
    const err = await call().then(() => undefined, (e: Error & { code?: string }) => e)
    t.ok(err !== undefined, `${what}: refused`)
    t.ok(Date.now() - started < 5000, `${what}: within ${Date.now() - started} ms, not at the deadline`)
    t.ok((err?.message.length ?? Infinity) < MAX_STATUS_DETAILS + 200, `${what}: the message cut to ${err?.message.length ?? 0} characters`)
  }
  await mesh.register('spiffe://plant.example/after')
  t.pass('the admin API still serves')
})
