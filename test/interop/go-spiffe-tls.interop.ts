/**
 * go-spiffe v2.9.0's spiffetls (our program, test/interop/go-spiffe-tls) on both sides of the Chaperone sidecar: a
 * `spiffetls.Listen` server with `tlsconfig.AuthorizeID` behind an outbound listener, and a `spiffetls.Dial` client
 * in front of an inbound listener, on loopback and across network namespaces. Each case proves the allowed peer and
 * the refused ones: go-spiffe's authorizer refusing a sidecar whose ID it does not expect, the outbound listener's
 * `expect` refusing a go-spiffe server, the inbound listener's policy refusing a go-spiffe client.
 * Part of `npm run test:interop`.
 */
import t from 'tap'
import type { Test } from 'tap'
import { spawn } from 'node:child_process'
import type { ChildProcessWithoutNullStreams } from 'node:child_process'
import { chmodSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { run } from '../helpers/command'
import { TD, echoServer, startMesh } from '../helpers/mesh'
import type { Mesh } from '../helpers/mesh'
import { NETNS_SKIP, SETPRIV_MISSING, createTopology } from '../helpers/netns'
import { SETPRIV } from '../helpers/netns-tools'
import { tcpExchange, waitFor } from '../helpers/peers'
import { interopSkip, placeForAnyUid, spiffeTlsPeer } from './peers'

const skip = interopSkip() || SETPRIV_MISSING
const SIDECAR_OUT = `${TD}/sidecar-out`
const SIDECAR_IN = `${TD}/sidecar-in`
const GO_SERVER = `${TD}/go-server`
const GO_CLIENT = `${TD}/go-client`
const GO_INTRUDER = `${TD}/go-intruder`
/** Registered to no one: what a peer authorizes when it must refuse the other side. */
const SOMEONE_ELSE = `${TD}/someone-else`
/** Each go-spiffe peer has its own uid with one entry, so spiffetls' own X509Source serves it that SVID. */
const UID = { [GO_SERVER]: 4311, [GO_CLIENT]: 4312, [GO_INTRUDER]: 4313 }
const MESSAGE = 'hello from the other side of the sidecar'

// The sidecars may call these go-spiffe peers and be called by the go-spiffe client; nothing else is allowed.
const POLICY = `version: 1
rules:
  - { name: out-to-go-server, from: ["${SIDECAR_OUT}"], to: ["${GO_SERVER}"], action: allow }
  - { name: go-client-to-in, from: ["${GO_CLIENT}"], to: ["${SIDECAR_IN}"], action: allow }
`

/** A line the program prints: `serve` per connection ({peer} or {error}), `dial` once. */
interface PeerLine { listening?: string, peer?: string, ok?: boolean, server?: string, reply?: string, error?: string }

/**
 * Where the go-spiffe peers run and how the sidecars (in this process, root namespace) reach them: on loopback, or
 * in namespaces of their own behind a bridge.
 */
interface Place {
  readonly name: string
  /** The go-spiffe server's listen host (port 0), in its own namespace. */
  readonly serverHost: string
  /** The inbound listener's host, as the go-spiffe client reaches it. */
  readonly inboundHost: string
  spawn: (uid: number, args: string[]) => ChildProcessWithoutNullStreams
  exec: (uid: number, args: string[]) => Promise<{ stdout: string, stderr: string }>
}

void t.test('go-spiffe v2.9.0 spiffetls through the Chaperone sidecar', { skip, timeout: 1_800_000 }, async t => {
  const builtAt = Date.now()
  const built = await spiffeTlsPeer()
  t.comment(`go-spiffe TLS peer ready in ${((Date.now() - builtAt) / 1000).toFixed(1)} s`)
  const mesh = await startMesh(POLICY)
  t.teardown(mesh.close)
  // The peers run as their own uids: they must reach the Workload API socket in the mesh's folder, and run a copy
  // of the binary (the cache is under root's home).
  chmodSync(mesh.dir, 0o711)
  const binary = placeForAnyUid(t, built, 'spiffe-tls')
  for (const id of [SIDECAR_OUT, SIDECAR_IN]) await mesh.register(id)
  for (const [id, uid] of Object.entries(UID)) await mesh.admin.createEntry({ spiffe_id: id, parent_id: '', selectors: [`unix:uid:${uid}`] })
  const env = { SPIFFE_ENDPOINT_SOCKET: mesh.workloadApi }
  const asUid = (uid: number): string[] => [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--', binary]

  const loopback: Place = {
    name: 'loopback',
    serverHost: '127.0.0.1',
    inboundHost: '127.0.0.1',
    spawn: (uid, args) => spawn(SETPRIV as string, [...asUid(uid), ...args], { env: { ...process.env, ...env } }),
    exec: async (uid, args) => await run(SETPRIV as string, [...asUid(uid), ...args], { env, timeoutMs: 30_000 })
  }
  await t.test('loopback – go-spiffe server behind an outbound listener', async t => { await proveOutbound(t, mesh, loopback) })
  await t.test('loopback – go-spiffe client in front of an inbound listener', async t => { await proveInbound(t, mesh, loopback) })

  await t.test('network namespaces – the same, each go-spiffe peer in a namespace of its own', { skip: NETNS_SKIP }, async t => {
    const topology = await createTopology({ prefix: 'gotls', hosts: ['server', 'client'] })
    t.teardown(topology.destroy)
    const across: Place = {
      name: 'namespaces',
      serverHost: topology.hosts.server.address,
      // The sidecars stay in the root namespace; its end of the bridge is where the client namespace reaches it.
      inboundHost: topology.bridgeAddress,
      spawn: (uid, args) => topology.spawn('server', binary, args, { uid, env }),
      exec: async (uid, args) => await topology.exec('client', binary, args, { uid, env })
    }
    await t.test('go-spiffe server behind an outbound listener', async t => { await proveOutbound(t, mesh, across) })
    await t.test('go-spiffe client in front of an inbound listener', async t => { await proveInbound(t, mesh, across) })
  })
})

/** Starts `spiffe-tls serve` as the go-spiffe server, authorizing `authorized`; its address and its lines so far. */
async function goServer (t: Test, place: Place, authorized: string): Promise<{ address: string, lines: PeerLine[] }> {
  const child = place.spawn(UID[GO_SERVER], ['serve', `${place.serverHost}:0`, authorized])
  t.teardown(() => { child.kill('SIGKILL') })
  const lines: PeerLine[] = []
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s })
  createInterface({ input: child.stdout }).on('line', line => { lines.push(JSON.parse(line) as PeerLine) })
  const listening = await waitFor(lines, line => line.listening !== undefined || line.ok === false, 30_000)
  if (listening?.listening === undefined) throw new Error(`the go-spiffe server did not listen: ${JSON.stringify(listening)} ${stderr}`)
  return { address: listening.listening, lines }
}

/** Runs `spiffe-tls dial` as `id`'s uid: its one result line. */
async function goDial (place: Place, id: keyof typeof UID, address: string, authorized: string): Promise<PeerLine> {
  const result = await place.exec(UID[id], ['dial', address, authorized, MESSAGE])
  const last = result.stdout.trim().split('\n').at(-1) ?? ''
  return last.startsWith('{') ? JSON.parse(last) as PeerLine : { ok: false, error: `no result: ${result.stdout}${result.stderr}` }
}

/**
 * A plain client → the outbound listener → mutual TLS → a `spiffetls.Listen` server. Allowed: it authorizes the
 * sidecar's ID and the sidecar expects its. Refused: the sidecar expecting another server ID; a go-spiffe server
 * authorizing another client ID.
 */
async function proveOutbound (t: Test, mesh: Mesh, place: Place): Promise<void> {
  const server = await goServer(t, place, SIDECAR_OUT)
  const picky = await goServer(t, place, SOMEONE_ELSE)
  const sidecar = await mesh.startSidecar(SIDECAR_OUT, {
    outbound: [`127.0.0.1:0=${server.address}@${GO_SERVER}`, `127.0.0.1:0=${server.address}@${SOMEONE_ELSE}`, `127.0.0.1:0=${picky.address}@${GO_SERVER}`]
  })
  const exchange = async (listener: string): Promise<string> =>
    (await tcpExchange(sidecar.port(listener), MESSAGE, { enough: received => received.length >= MESSAGE.length, timeoutMs: 5000 })).received

  t.equal(await exchange('outbound-1'), MESSAGE, `${place.name}: the echo comes back from the go-spiffe server`)
  t.same(server.lines.filter(line => line.peer !== undefined || line.error !== undefined), [{ peer: SIDECAR_OUT }], 'go-spiffe authorized the sidecar by its SPIFFE ID')

  t.equal(await exchange('outbound-2'), '', 'the sidecar expecting another server ID passes nothing back')
  t.match(await waitFor(sidecar.logs, line => line.event === 'handshake_failed'), {
    listener: 'outbound-2', reason: 'ERR_X509_SVID_ID_MISMATCH', err: `peer is ${GO_SERVER}, expected ${SOMEONE_ELSE}`
  }, 'and logs the go-spiffe server\'s ID as not the expected one')

  t.equal(await exchange('outbound-3'), '', 'a go-spiffe server authorizing another ID passes nothing back')
  t.match(await waitFor(picky.lines, line => line.error !== undefined, 5000), { error: `unexpected ID "${SIDECAR_OUT}"` }, 'go-spiffe\'s authorizer refused the sidecar\'s ID')
  t.same(picky.lines.filter(line => line.peer !== undefined), [], 'no connection got past it')
  t.match(await waitFor(sidecar.logs, line => line.event === 'handshake_failed' && line.listener === 'outbound-3'), {
    reason: 'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', err: /the server refused our certificate/
  }, 'the sidecar logs the refusal, which TLS 1.3 delivers after its side of the handshake')
  t.same(sidecar.logs.filter(line => line.event === 'denied'), [], 'the policy refused nothing: each refusal above is the ID check\'s')
}

/**
 * A `spiffetls.Dial` client → the inbound listener → the echo app. Allowed: the client authorizes the sidecar's ID
 * and the policy allows the client. Refused: a client authorizing another ID; a client the policy does not allow.
 */
async function proveInbound (t: Test, mesh: Mesh, place: Place): Promise<void> {
  const app = await echoServer()
  t.teardown(() => { app.server.close() })
  let reached = 0
  app.server.on('connection', () => { reached++ })
  const sidecar = await mesh.startSidecar(SIDECAR_IN, { inbound: [`${place.inboundHost}:0=127.0.0.1:${app.port}`] })
  const address = `${place.inboundHost}:${sidecar.port('inbound-1')}`

  t.same(await goDial(place, GO_CLIENT, address, SIDECAR_IN), { ok: true, server: SIDECAR_IN, reply: MESSAGE }, `${place.name}: the echo comes back through the sidecar`)
  t.equal(reached, 1, 'the allowed client reached the app')

  const picky = await goDial(place, GO_CLIENT, address, SOMEONE_ELSE)
  t.match(picky, { ok: false, error: `unexpected ID "${SIDECAR_IN}"` }, 'go-spiffe\'s authorizer refused the sidecar\'s ID')
  t.notOk('server' in picky, 'spiffetls.Dial itself failed')
  t.match(await waitFor(sidecar.logs, line => line.event === 'handshake_failed'), {
    listener: 'inbound-1', reason: 'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE'
  }, 'and the sidecar logs the bad_certificate alert it got')

  const intruder = await goDial(place, GO_INTRUDER, address, SIDECAR_IN)
  t.match(intruder, { ok: false, server: SIDECAR_IN, reply: '' }, 'a client the policy does not allow completes TLS 1.3 but gets nothing back')
  t.match(await waitFor(sidecar.logs, line => line.event === 'denied'), {
    listener: 'inbound-1', direction: 'inbound', peer: GO_INTRUDER, self: SIDECAR_IN, rule: 'default'
  }, 'the sidecar\'s policy denied it, and the log names the go-spiffe client')
  t.equal(reached, 1, 'neither refused client reached the app')
}
