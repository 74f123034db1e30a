/**
 * ghostunnel (GHOSTUNNEL_VERSION, `--use-workload-api-addr`) against the Chaperone sidecar in both directions, on
 * SVIDs from our agent: a ghostunnel client (`--verify-uri`) in front of an inbound listener, and an outbound
 * listener in front of a ghostunnel server (`--allow-uri`), on loopback and across network namespaces, then both
 * again with short-lived ghostunnel SVIDs renewed while calls go on. Each case proves the allowed peer and the
 * refused ones: ghostunnel refusing a sidecar whose ID it was not told to accept, the sidecar's policy refusing a
 * ghostunnel client, the outbound listener's `expect` refusing a ghostunnel server.
 * ghostunnel v1.8.4 because it is the newest the Go module proxy builds: v1.11.x is served, but needs
 * github.com/wrouesnel/go.connect-proxy-scheme, which the proxy refuses (see peers.ts). Its landlock sandbox is
 * opt-in in that version (`--use-landlock`), so nothing here turns it off. Part of `npm run test:interop`.
 */
import t from 'tap'
import type { Test } from 'tap'
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import type { X509Certificate } from 'node:crypto'
import { chmodSync } from 'node:fs'
import { get } from 'node:http'
import { createInterface } from 'node:readline'
import { connect } from 'node:tls'
import { TD, reportingApp, startMesh } from '../helpers/mesh'
import type { Mesh } from '../helpers/mesh'
import { NETNS_SKIP, SETPRIV_MISSING, createTopology } from '../helpers/netns'
import { tcpExchange, waitFor } from '../helpers/peers'
import { PortPicker, asUid, startGhostunnel } from './ghostunnel-stand'
import type { Ghostunnel, GhostunnelOptions, Launch } from './ghostunnel-stand'
import { GHOSTUNNEL_VERSION, ghostunnel, interopSkip, placeForAnyUid } from './peers'

const skip = interopSkip() || SETPRIV_MISSING
const SIDECAR_OUT = `${TD}/sidecar-out`
const SIDECAR_IN = `${TD}/sidecar-in`
const GT_SERVER = `${TD}/ghostunnel-server`
const GT_CLIENT = `${TD}/ghostunnel-client`
const GT_INTRUDER = `${TD}/ghostunnel-intruder`
const GT_ROTATING = `${TD}/ghostunnel-rotating`
/** Registered to no one: what a peer is told to accept when it must refuse the other side. */
const SOMEONE_ELSE = `${TD}/someone-else`
/**
 * ghostunnel serves the first SVID the Workload API gives its uid, so each ghostunnel identity has a uid of its own
 * with one entry (the sidecars' IDs are this process's, root's).
 */
const UID = { [GT_SERVER]: 4321, [GT_CLIENT]: 4322, [GT_INTRUDER]: 4323, [GT_ROTATING]: 4324 }
/** The rotating identity's X509-SVID lifetime: the agent renews it at about half of that. */
const TTL_SECONDS = 5

// The sidecars may call the ghostunnel servers and be called by the ghostunnel clients; the intruder is allowed nothing.
const POLICY = `version: 1
rules:
  - { name: out-to-ghostunnel, from: ["${SIDECAR_OUT}"], to: ["${GT_SERVER}", "${GT_ROTATING}"], action: allow }
  - { name: ghostunnel-to-in, from: ["${GT_CLIENT}", "${GT_ROTATING}"], to: ["${SIDECAR_IN}"], action: allow }
`

/**
 * Where the ghostunnels run and how the sidecars (in this process, root namespace) reach them: on loopback, or in
 * namespaces of their own ('server', 'client') behind a bridge. Plain apps run next to what they serve.
 */
interface Place {
  readonly name: string
  /** The ghostunnel server's listen host. */
  readonly serverHost: string
  /** The inbound listener's host, as the ghostunnel client reaches it. */
  readonly inboundHost: string
  /** Where a ghostunnel client's /_status listens, reachable from here (its listener is on its own loopback). */
  readonly clientStatusHost: string
  /** Runs a command on the server's or the client's side, as `uid` (default root). */
  launch: (side: 'server' | 'client', uid?: number) => Launch
  /** A plain call on the client's side to a ghostunnel client's port: what came back before it closed. */
  call: (port: number, text: string) => Promise<string>
}

void t.test(`ghostunnel ${GHOSTUNNEL_VERSION} against the Chaperone sidecar, both directions`, { skip, timeout: 1_800_000 }, async t => {
  const mesh = await startMesh(POLICY)
  t.teardown(mesh.close)
  // ghostunnel runs as other uids: it must reach the Workload API socket in the mesh's folder and run a copy of the
  // binary (the cache is under root's home).
  chmodSync(mesh.dir, 0o711)
  const builtAt = Date.now()
  const binary = placeForAnyUid(t, await ghostunnel(), 'ghostunnel')
  t.comment(`ghostunnel ready in ${((Date.now() - builtAt) / 1000).toFixed(1)} s`)
  for (const id of [SIDECAR_OUT, SIDECAR_IN]) await mesh.register(id)
  for (const [id, uid] of Object.entries(UID)) {
    await mesh.admin.createEntry({ spiffe_id: id, parent_id: '', selectors: [`unix:uid:${uid}`], ...(id === GT_ROTATING ? { x509_svid_ttl: TTL_SECONDS } : {}) })
  }
  const stand: Stand = { mesh, binary, ports: new PortPicker() }

  const loopback: Place = {
    name: 'loopback',
    serverHost: '127.0.0.1',
    inboundHost: '127.0.0.1',
    clientStatusHost: '127.0.0.1',
    launch: (_side, uid) => uid === undefined ? argv => spawn(argv[0], argv.slice(1)) : asUid(uid),
    call: async (port, text) => (await tcpExchange(port, text, { enough: received => received.length >= text.length, timeoutMs: 5000 })).received
  }
  await t.test('loopback – ghostunnel client → inbound listener', async t => { await proveInbound(t, stand, loopback) })
  await t.test('loopback – outbound listener → ghostunnel server', async t => { await proveOutbound(t, stand, loopback) })

  await t.test('network namespaces – the same, each ghostunnel in a namespace of its own', { skip: NETNS_SKIP }, async t => {
    const topology = await createTopology({ prefix: 'ghost', hosts: ['server', 'client'] })
    t.teardown(topology.destroy)
    const across: Place = {
      name: 'namespaces',
      serverHost: topology.hosts.server.address,
      // The sidecars stay in the root namespace; its end of the bridge is where the client namespace reaches it.
      inboundHost: topology.bridgeAddress,
      clientStatusHost: topology.hosts.client.address,
      launch: (side, uid) => argv => topology.spawn(side, argv[0], argv.slice(1), { uid }),
      call: async (port, text) => {
        const result = await topology.exec('client', process.execPath, ['-e', CALL, String(port), text])
        if (!result.stdout.startsWith('{')) throw new Error(`the call in the client namespace failed: ${result.stdout}${result.stderr}`)
        return (JSON.parse(result.stdout) as { received: string }).received
      }
    }
    await t.test('ghostunnel client → inbound listener', async t => { await proveInbound(t, stand, across) })
    await t.test('outbound listener → ghostunnel server', async t => { await proveOutbound(t, stand, across) })
  })

  await t.test(`rotation – ghostunnel's ${TTL_SECONDS} s SVIDs renew while calls go on, both directions`, async t => { await proveRotation(t, stand) })
})

interface Stand { readonly mesh: Mesh, readonly binary: string, readonly ports: PortPicker }

/** Starts ghostunnel, stopped at the test's end, its log shown if the test failed. */
async function runGhostunnel (t: Test, stand: Stand, options: Omit<GhostunnelOptions, 'workloadApi'>): Promise<Ghostunnel> {
  const started = await startGhostunnel(stand.binary, stand.ports, { ...options, workloadApi: stand.mesh.workloadApi })
  t.teardown(async () => {
    await started.stop()
    if (!t.passing()) t.comment(`ghostunnel ${options.mode} ${started.address}:\n${started.lines.join('\n')}`)
  })
  return started
}

/** A node script: connects to 127.0.0.1:PORT, sends TEXT, prints {received} once the echo is whole or the peer closed. */
const CALL = `const [port, text] = process.argv.slice(1); let received = ''
const socket = require('node:net').connect(Number(port), '127.0.0.1', () => socket.write(text))
socket.on('data', data => { received += data; if (received.length >= text.length) socket.end() })
socket.on('error', () => {}).on('close', () => { console.log(JSON.stringify({ received })) })
setTimeout(() => socket.destroy(), 5000).unref()`

/** A node script: a TCP echo on 127.0.0.1 that prints {port} once, then {data} for every chunk it echoes. */
const ECHO = `const server = require('node:net').createServer(socket => {
  socket.on('error', () => {}).on('data', data => { console.log(JSON.stringify({ data: data.toString() })); socket.write(data) })
  socket.on('end', () => socket.end())
}).listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port })))`

/** The echo app, run by `launch` (so in a namespace when it must be); `received()`: every byte it echoed so far. */
async function echoApp (t: Test, launch: Launch): Promise<{ port: number, received: () => string }> {
  const child = launch([process.execPath, '-e', ECHO])
  t.teardown(() => { child.kill('SIGKILL') })
  const lines: Array<{ port?: number, data?: string }> = []
  createInterface({ input: child.stdout }).on('line', line => { lines.push(JSON.parse(line) as { port?: number, data?: string }) })
  const listening = await waitFor(lines, line => line.port !== undefined, 10_000)
  if (listening?.port === undefined) throw new Error('the echo app did not start')
  return { port: listening.port, received: () => lines.map(line => line.data ?? '').join('') }
}

/**
 * A plain call → ghostunnel client → mutual TLS → the inbound listener → the echo app. Allowed: ghostunnel verifies
 * the sidecar's ID and the policy allows ghostunnel's. Refused: ghostunnel verifying another ID; a ghostunnel client
 * the policy does not allow.
 */
async function proveInbound (t: Test, stand: Stand, place: Place): Promise<void> {
  const app = await echoApp(t, argv => spawn(argv[0], argv.slice(1)))
  const sidecar = await stand.mesh.startSidecar(SIDECAR_IN, { inbound: [`${place.inboundHost}:0=127.0.0.1:${app.port}`] })
  const client = async (id: keyof typeof UID, verify: string): Promise<Ghostunnel> => await runGhostunnel(t, stand, {
    mode: 'client', listenHost: '127.0.0.1', statusHost: place.clientStatusHost, target: `${place.inboundHost}:${sidecar.port('inbound-1')}`, peers: [verify], launch: place.launch('client', UID[id])
  })

  const allowed = await client(GT_CLIENT, SIDECAR_IN)
  t.equal(await place.call(allowed.port, 'allowed call'), 'allowed call', `${place.name}: the echo comes back through ghostunnel and the sidecar`)
  t.equal(app.received(), 'allowed call', 'the app got the call')
  t.match(await allowed.status(), { ok: true, backend_ok: true }, 'ghostunnel\'s own health check, a handshake with the sidecar, passes')

  const picky = await client(GT_CLIENT, SOMEONE_ELSE)
  t.equal(await place.call(picky.port, 'call verifying another ID'), '', 'ghostunnel verifying another ID passes nothing back')
  t.match(await waitFor(picky.lines, line => line.includes('error on dial'), 5000), /unauthorized: invalid principal/, 'ghostunnel refused the sidecar\'s certificate')
  t.match(await picky.status(), { ok: false, backend_ok: false, backend_error: /unauthorized/ }, 'and its health check says so')

  const intruder = await client(GT_INTRUDER, SIDECAR_IN)
  t.equal(await place.call(intruder.port, 'call from the intruder'), '', 'a ghostunnel client the policy does not allow gets nothing back')
  t.match(await waitFor(sidecar.logs, line => line.event === 'denied'), {
    listener: 'inbound-1', direction: 'inbound', peer: GT_INTRUDER, self: SIDECAR_IN, rule: 'default'
  }, 'the sidecar\'s policy denied it, and the log names ghostunnel\'s SPIFFE ID')
  t.same(sidecar.logs.filter(line => line.event === 'denied').map(line => line.peer), [GT_INTRUDER], 'the policy denied no one else: the other refusal was ghostunnel\'s')
  t.equal(app.received(), 'allowed call', 'neither refused call reached the app')
}

/**
 * A plain call → the outbound listener → mutual TLS → ghostunnel server → the echo app. Allowed: the sidecar
 * expects ghostunnel's ID and ghostunnel allows the sidecar's. Refused: the sidecar expecting another server ID; a
 * ghostunnel server allowing another client ID.
 */
async function proveOutbound (t: Test, stand: Stand, place: Place): Promise<void> {
  const app = await echoApp(t, place.launch('server'))
  const server = async (allow: string): Promise<Ghostunnel> => await runGhostunnel(t, stand, {
    mode: 'server', listenHost: place.serverHost, target: `127.0.0.1:${app.port}`, peers: [allow], launch: place.launch('server', UID[GT_SERVER])
  })
  const allowing = await server(SIDECAR_OUT)
  const picky = await server(SOMEONE_ELSE)
  const sidecar = await stand.mesh.startSidecar(SIDECAR_OUT, {
    outbound: [`127.0.0.1:0=${allowing.address}@${GT_SERVER}`, `127.0.0.1:0=${allowing.address}@${SOMEONE_ELSE}`, `127.0.0.1:0=${picky.address}@${GT_SERVER}`]
  })
  const call = async (listener: string, text: string): Promise<string> =>
    (await tcpExchange(sidecar.port(listener), text, { enough: received => received.length >= text.length, timeoutMs: 5000 })).received

  t.equal(await call('outbound-1', 'allowed call'), 'allowed call', `${place.name}: the echo comes back through the sidecar and ghostunnel`)
  t.equal(app.received(), 'allowed call', 'the app got the call')

  t.equal(await call('outbound-2', 'call expecting another ID'), '', 'the sidecar expecting another server ID passes nothing back')
  t.match(await waitFor(sidecar.logs, line => line.event === 'handshake_failed'), {
    listener: 'outbound-2', reason: 'ERR_X509_SVID_ID_MISMATCH', err: `peer is ${GT_SERVER}, expected ${SOMEONE_ELSE}`
  }, 'and logs ghostunnel\'s ID as not the expected one')

  t.equal(await call('outbound-3', 'call to a picky ghostunnel'), '', 'a ghostunnel server allowing another ID passes nothing back')
  t.match(await waitFor(picky.lines, line => line.includes('error on TLS handshake'), 5000), /unauthorized: invalid principal/, 'ghostunnel refused the sidecar\'s certificate')
  t.match(await waitFor(sidecar.logs, line => line.event === 'handshake_failed' && line.listener === 'outbound-3'), {
    reason: /^ERR_SSL_.*_ALERT_/, err: /the server refused our certificate/
  }, 'the sidecar logs the refusal, which TLS 1.3 delivers after its side of the handshake')
  t.same(sidecar.logs.filter(line => line.event === 'denied'), [], 'the policy refused nothing: each refusal above is an ID check\'s')
  t.equal(app.received(), 'allowed call', 'neither refused call reached the app')
}

/**
 * One ghostunnel identity with a TTL_SECONDS SVID, as a client in front of an inbound HTTP listener and as a server
 * behind an outbound listener, called every half second for three lifetimes. Every call must go through, and the
 * certificates ghostunnel presents must change: the inbound sidecar names each in X-Forwarded-Client-Cert (Hash=),
 * the server's is read by a TLS client of our own. The sidecars refuse an expired certificate, so calls that go on
 * past the first one's end prove ghostunnel took the renewed SVIDs from the Workload API. (ghostunnel resumes no
 * TLS session: its server clones its tls.Config for every connection, and each clone makes session-ticket keys of
 * its own, so every call is a full handshake with the current certificate.)
 */
async function proveRotation (t: Test, stand: Stand): Promise<void> {
  const { mesh } = stand
  const launch = asUid(UID[GT_ROTATING])
  const app = await reportingApp()
  t.teardown(() => { app.server.close() })
  const inbound = await mesh.startSidecar(SIDECAR_IN, { inboundHttp: [`127.0.0.1:0=127.0.0.1:${app.port}`] })
  const client = await runGhostunnel(t, stand, { mode: 'client', listenHost: '127.0.0.1', target: inbound.address('inbound-1'), peers: [SIDECAR_IN], launch })
  const echo = await echoApp(t, argv => spawn(argv[0], argv.slice(1)))
  const server = await runGhostunnel(t, stand, { mode: 'server', listenHost: '127.0.0.1', target: `127.0.0.1:${echo.port}`, peers: [SIDECAR_OUT], launch })
  const outbound = await mesh.startSidecar(SIDECAR_OUT, { outbound: [`127.0.0.1:0=${server.address}@${GT_ROTATING}`] })
  const sidecarSvid = await mesh.svid(SIDECAR_OUT)

  const clientCerts: Array<{ at: number, hash: string }> = []
  const serverCerts: Array<{ at: number, hash: string, validTo: number }> = []
  const failures: string[] = []
  const startedAt = Date.now()
  for (let n = 0; Date.now() - startedAt < 3 * TTL_SECONDS * 1000; n++) {
    const at = Date.now()
    const [xfcc, echoed, cert] = await Promise.all([
      httpGet(client.port).catch((err: Error) => `failed: ${err.message}`),
      tcpExchange(outbound.port('outbound-1'), `call ${n}`, { enough: received => received === `call ${n}`, timeoutMs: 5000 }),
      serverCertificate(server.port, sidecarSvid)
    ])
    const named = /;Hash=([0-9a-f]{64});URI=(.*)$/.exec(xfcc)
    if (named?.[2] === GT_ROTATING) clientCerts.push({ at, hash: named[1] })
    else failures.push(`${at - startedAt} ms, inbound: ${xfcc}`)
    if (echoed.received !== `call ${n}`) failures.push(`${at - startedAt} ms, outbound: got "${echoed.received}" ${echoed.error ?? ''}`)
    serverCerts.push({ at, hash: createHash('sha256').update(cert.raw).digest('hex'), validTo: new Date(cert.validTo).getTime() })
    await new Promise(resolve => setTimeout(resolve, 500))
  }

  t.same(failures, [], 'every call went through, both directions')
  const serverHashes = new Set(serverCerts.map(c => c.hash))
  t.ok(serverHashes.size >= 2, `ghostunnel server presented ${serverHashes.size} certificates`)
  t.ok(serverCerts.some(c => c.at > serverCerts[0].validTo + 1000), 'calls through the outbound listener went on after its first certificate expired')
  const clientHashes = new Set(clientCerts.map(c => c.hash))
  t.ok(clientHashes.size >= 2, `ghostunnel client presented ${clientHashes.size} certificates to the inbound sidecar`)
  // Both ghostunnels are one entry's workloads, served the same SVID: the server's probed certificates tell when the
  // client's first one ended.
  const firstEnd = serverCerts.find(c => c.hash === clientCerts[0]?.hash)?.validTo ?? Infinity
  t.ok(clientCerts.some(c => c.at > firstEnd + 1000), 'calls through ghostunnel client went on after its first certificate expired')
  t.same(inbound.logs.filter(line => line.event === 'handshake_failed'), [], 'the inbound sidecar refused no handshake')
  t.same(outbound.logs.filter(line => line.event === 'handshake_failed'), [], 'the outbound sidecar refused no handshake')
}

/** GET through ghostunnel client on a fresh connection (a kept one would keep its first certificate): the app's X-Forwarded-Client-Cert. */
async function httpGet (port: number): Promise<string> {
  return await new Promise((resolve, reject) => {
    const request = get({ host: '127.0.0.1', port, path: '/rotation', agent: false, timeout: 5000 }, response => {
      let body = ''
      response.setEncoding('utf8').on('data', (s: string) => { body += s }).on('end', () => {
        if (response.statusCode !== 200) return reject(new Error(`${response.statusCode ?? '?'} ${body}`))
        const seen = JSON.parse(body) as { headers: Record<string, string> }
        resolve(seen.headers['x-forwarded-client-cert'] ?? 'no X-Forwarded-Client-Cert')
      })
    })
    request.on('timeout', () => { request.destroy(new Error('timed out')) }).on('error', reject)
  })
}

/** The certificate ghostunnel server presents now, to a TLS client holding the sidecar's SVID (which it allows). */
async function serverCertificate (port: number, svid: { certPem: string, keyPem: string }): Promise<X509Certificate> {
  return await new Promise((resolve, reject) => {
    // ghostunnel's certificate names no host: SPIFFE peers are checked by ID, and the ID is not what this reads.
    const socket = connect({ host: '127.0.0.1', port, cert: svid.certPem, key: svid.keyPem, rejectUnauthorized: false }, () => {
      const cert = socket.getPeerX509Certificate()
      socket.destroy()
      if (cert === undefined) reject(new Error('no server certificate')); else resolve(cert)
    })
    socket.on('error', reject)
  })
}
