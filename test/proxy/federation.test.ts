import t from 'tap'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect } from 'node:tls'
import pino from 'pino'
import { loadSidecarConfig } from '../../proxy/config'
import { Sidecar } from '../../proxy/sidecar'
import { echoServer } from '../helpers/mesh'
import { FEDERATED_TD, TD, WORKLOAD_ID, startStandIn } from '../helpers/workload-stand-in'
import type { StandIn } from '../helpers/workload-stand-in'

// The sidecar against another Workload API than our agent (a stand-in serving the standard protocol, as a SPIRE
// agent would) that also hands out a federated trust domain's bundle: peers of that trust domain are verified to
// their own bundle, and never accepted for an ID of ours.

const dir = mkdtempSync(join(tmpdir(), 'chaperone-federation-'))
let standIn: StandIn
let sidecar: Sidecar
let app: Awaited<ReturnType<typeof echoServer>>
const logs: Array<Record<string, unknown>> = []
t.before(async () => {
  standIn = await startStandIn(dir)
  app = await echoServer()
  const policy = join(dir, 'policy.yaml')
  writeFileSync(policy, `version: 1\nrules:\n  - { name: partners, from: ["spiffe://${FEDERATED_TD}/**"], to: ["${WORKLOAD_ID}"], action: allow }\n  - { name: ours, from: ["spiffe://${TD}/**"], to: ["*"], action: allow }\n`)
  const logger = pino({ level: 'debug' }, { write: (line: string) => { logs.push(JSON.parse(line) as Record<string, unknown>) } })
  sidecar = await Sidecar.start(loadSidecarConfig(undefined, { workloadApi: standIn.address, policy, admin: '127.0.0.1:0', inbound: [`127.0.0.1:0=127.0.0.1:${app.port}`] }), logger)
})
t.teardown(async () => {
  await sidecar.stop(0)
  app.server.close()
  await standIn.close(true)
  rmSync(dir, { recursive: true, force: true })
})

async function send (chainPem: string, keyPem: string, text: string): Promise<string> {
  const port = Number(sidecar.addresses()['inbound-1'].split(':')[1])
  const socket = connect({ port, host: '127.0.0.1', cert: chainPem, key: keyPem, rejectUnauthorized: false })
  let received = ''
  socket.setEncoding('utf8').on('data', (chunk: string) => {
    received += chunk
    if (received.length >= text.length) socket.end()
  }).on('error', () => { socket.destroy() })
  await once(socket, 'secureConnect')
  socket.write(text)
  await once(socket, 'close')
  return received
}

void t.test('federation – a peer of a federated trust domain is verified to its own bundle and allowed by the policy', async t => {
  t.match(sidecar.services.identity.current?.context.bundles.size, 2, 'our bundle and the federated one')
  const partner = standIn.federatedCa.issueSvid(`spiffe://${FEDERATED_TD}/partner`)
  t.equal(await send(partner.chainPem, partner.keyPem, 'hello from a partner'), 'hello from a partner')
  t.match(logs.filter(line => line.event === 'handshake_failed'), [])
})

void t.test('federation – the federated authority cannot vouch for an ID of our trust domain', async t => {
  const impostor = standIn.federatedCa.issueSvid(`spiffe://${TD}/app`)
  t.equal(await send(impostor.chainPem, impostor.keyPem, 'let me in'), '')
  t.match(logs.find(line => line.event === 'handshake_failed'), { reason: /^ERR_X509_SVID_(UNTRUSTED|WRONG_TRUST_DOMAIN)$/ })
})
