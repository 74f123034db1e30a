/**
 * A test stand for attacks on the sidecar's HTTP mode (not a test itself), in both directions:
 * - inbound: a peer that is no sidecar, over mutual TLS with a registered identity's SVID, straight to the server
 *   sidecar's inbound HTTP listeners: `app` (a node:http app that records what it parsed, and answers upgrades with
 *   101 to show what a tunnel would carry) and `raw` (a scripted server that records every byte);
 * - outbound: the local app, in plain TCP, to the client sidecar's outbound HTTP listeners: `app` (through the
 *   server sidecar to the same node:http app) and `raw` (a scripted mutual-TLS server of its own that presents the
 *   `server` SVID and records every byte, so the outbound sidecar is seen refusing and normalising by itself).
 *
 * - same-device: the local app, in plain TCP, handed over to the server sidecar's inbound side as node mode hands a
 *   call between two of its apps (same-device-direction.ts), to the same `app` and `raw`.
 *
 * The policy allows `client` and `friend` GET and POST on /public/* of `server`, nothing else; `nobody` is
 * registered but no rule names it. The sidecars run with the configuration's defaults; startServer/startClient
 * start more, with the settings a test names.
 */
import { get } from 'node:http'
import type { IncomingHttpHeaders } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Test } from 'tap'
import { recordingApp } from './http-stand'
import { TD, startMesh } from './mesh'
import type { Mesh, RunningSidecar } from './mesh'
import { RawConnection, scriptedServer } from './raw-http'
import type { RawRequest, RawResponse, Reply, ScriptedRecord } from './raw-http'
import { mtlsScriptedServer, openMtls } from './raw-mtls'
import type { SvidPem } from './raw-mtls'
import { waitFor } from './peers'
import { sameDeviceDirection } from './same-device-direction'

export const ATTACK_POLICY = `version: 1
rules:
  - name: public-reads-and-posts
    from: [${TD}/client, ${TD}/friend]
    to: [${TD}/server]
    http: { methods: [GET, POST], paths: [/public/*] }
    action: allow
`

/** Upstream answers by path: broken or ambiguous framings, and a 101 that no request asked for. */
const UPSTREAM_REPLIES: Record<string, string> = {
  '/public/cl-te': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  '/public/two-lengths': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!',
  '/public/bad-chunk': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n',
  '/public/switch': 'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n'
}

/** The raw backends' script: UPSTREAM_REPLIES, else 200 with the target as the body. */
function reply (request: RawRequest): Reply {
  const scripted = UPSTREAM_REPLIES[request.target.split('?')[0]]
  return { write: scripted ?? `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(request.target)}\r\n\r\n${request.target}` }
}

/** An upgrade the node:http app answered with 101, and every byte that came through the tunnel after it. */
export interface AppUpgrade { url: string, headers: IncomingHttpHeaders, tunnelled: Buffer[] }

async function upgradingApp (): Promise<Awaited<ReturnType<typeof recordingApp>> & { upgrades: AppUpgrade[], tunnels: Set<Duplex> }> {
  const app = await recordingApp()
  const upgrades: AppUpgrade[] = []
  const tunnels = new Set<Duplex>()
  app.server.on('upgrade', (req: { url?: string, headers: IncomingHttpHeaders }, socket: Duplex, head: Buffer) => {
    const upgrade: AppUpgrade = { url: req.url ?? '', headers: req.headers, tunnelled: head.length > 0 ? [head] : [] }
    upgrades.push(upgrade)
    tunnels.add(socket)
    socket.on('error', () => { socket.destroy() }).on('close', () => tunnels.delete(socket))
    socket.on('data', (chunk: Buffer) => { upgrade.tunnelled.push(chunk) })
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${req.headers.upgrade ?? ''}\r\n\r\n`)
  })
  return { ...app, upgrades, tunnels }
}

/** What a test registers teardowns on. */
export type Teardown = Pick<Test, 'teardown'>
export type Backend = 'app' | 'raw'

/** One side of the pair under attack, as the attacker reaches it. */
export interface Direction {
  /** same-device: node mode's handoff from the local app to the server sidecar's inbound side (same-device-direction.ts). */
  readonly name: 'inbound' | 'outbound' | 'same-device'
  /** The sidecar under attack. */
  readonly sidecar: RunningSidecar
  /** A raw connection to the sidecar's listener in front of `backend`, closed when `test` ends. */
  open: (test: Teardown, backend: Backend) => Promise<RawConnection>
  /** The byte recorder behind `raw`: the scripted app (inbound), the scripted mutual-TLS server (outbound). */
  readonly recorder: ScriptedRecord
}

export interface AttackStand {
  readonly mesh: Mesh
  readonly server: RunningSidecar
  readonly client: RunningSidecar
  readonly app: Awaited<ReturnType<typeof upgradingApp>>
  readonly scripted: Awaited<ReturnType<typeof scriptedServer>>
  readonly sink: Awaited<ReturnType<typeof mtlsScriptedServer>>
  readonly inbound: Direction
  readonly outbound: Direction
  readonly sameDevice: Direction
  readonly directions: readonly Direction[]
  /** The two directions through other sidecars (started with startServer and startClient). */
  directionsFor: (server: RunningSidecar, client: RunningSidecar) => [inbound: Direction, outbound: Direction]
  svid: (name: 'client' | 'friend' | 'nobody') => SvidPem
  /** Another server sidecar: inbound listeners `app` and `raw`, with `settings` and per-listener `listener` settings. */
  startServer: (settings?: Record<string, unknown>, listener?: Record<string, unknown>) => Promise<RunningSidecar>
  /** Another client sidecar: an outbound listener `raw` to the recording mutual-TLS server. */
  startClient: (settings?: Record<string, unknown>, listener?: Record<string, unknown>) => Promise<RunningSidecar>
  close: () => Promise<void>
}

export async function startAttackStand (): Promise<AttackStand> {
  const mesh = await startMesh(ATTACK_POLICY)
  for (const name of ['client', 'friend', 'nobody', 'server']) await mesh.register(`${TD}/${name}`)
  const svids = {
    client: await mesh.svid(`${TD}/client`), friend: await mesh.svid(`${TD}/friend`), nobody: await mesh.svid(`${TD}/nobody`)
  }
  const app = await upgradingApp()
  const scripted = await scriptedServer(reply)
  const sink = await mtlsScriptedServer(await mesh.svid(`${TD}/server`), reply)
  const http = (name: string, target: string, listener: Record<string, unknown>): Record<string, unknown> => ({ name, listen: '127.0.0.1:0', target, protocol: 'http', ...listener })
  const startServer = async (settings = {}, listener = {}): Promise<RunningSidecar> => await mesh.startSidecar(`${TD}/server`, {}, {
    ...settings, inbound: [http('app', `127.0.0.1:${app.port}`, listener), http('raw', `127.0.0.1:${scripted.port}`, listener)]
  })
  // Its backends' ports are HTTP ports too, for the same-device direction (node mode serves by port).
  const server = await startServer({ transparent: { httpPorts: [app.port, scripted.port] } })
  const expect = { expect: `${TD}/server` }
  const startClient = async (settings = {}, listener = {}): Promise<RunningSidecar> => await mesh.startSidecar(`${TD}/client`, {}, {
    ...settings, outbound: [http('raw', `127.0.0.1:${sink.port}`, { ...expect, ...listener })]
  })
  const client = await mesh.startSidecar(`${TD}/client`, {}, {
    outbound: [http('app', server.address('app'), expect), http('raw', `127.0.0.1:${sink.port}`, expect)]
  })
  const closing = (test: Teardown, connection: RawConnection): RawConnection => {
    test.teardown(() => { connection.close() })
    return connection
  }
  const directionsFor = (server: RunningSidecar, client: RunningSidecar): [Direction, Direction] => [
    { name: 'inbound', sidecar: server, recorder: scripted, open: async (test, backend) => closing(test, await openMtls(server.port(backend), svids.client)) },
    { name: 'outbound', sidecar: client, recorder: sink, open: async (test, backend) => closing(test, await RawConnection.open(client.port(backend))) }
  ]
  const [inbound, outbound] = directionsFor(server, client)
  const sameDevice = await sameDeviceDirection(client, server, scripted, { app: app.port, raw: scripted.port }, expect.expect)
  return {
    mesh, server, client, app, scripted, sink, inbound, outbound, sameDevice, directions: [inbound, outbound, sameDevice], directionsFor, svid: name => svids[name], startServer, startClient,
    close: async () => {
      sameDevice.close()
      await mesh.close()
      for (const socket of [...scripted.sockets, ...sink.sockets, ...app.tunnels]) socket.destroy()
      for (const server of [scripted.server, sink.server, app.server]) server.close()
      app.server.closeAllConnections()
    }
  }
}

/** What `recorder` receives from now on, as latin1 text: '' while nothing arrived. */
export function bytesSince (recorder: ScriptedRecord): () => string {
  const from = recorder.received.length
  return () => Buffer.concat(recorder.received.slice(from)).toString('latin1')
}

/** The JSON body of a response the sidecar wrote itself, or undefined when the body is not JSON. */
export function jsonBody (response: RawResponse): Record<string, unknown> | undefined {
  try {
    return JSON.parse(response.body.toString()) as Record<string, unknown>
  } catch {
    return undefined
  }
}

/** node:http's rawHeaders or rawTrailers as [name, value] pairs. */
export const fieldPairs = (raw: readonly string[]): Array<[string, string]> => raw.flatMap((name, n) => n % 2 === 0 ? [[name, raw[n + 1]] as [string, string]] : [])

/** The values of the fields named `lower` (in any case), in order. */
export const valuesOf = (fields: ReadonlyArray<readonly [string, string]>, lower: string): string[] =>
  fields.filter(([name]) => name.toLowerCase() === lower).map(([, value]) => value)

/** The comma-separated tokens of the fields named `lower`, lower-cased (what Connection names, say). */
export const tokensOf = (fields: ReadonlyArray<readonly [string, string]>, lower: string): string[] =>
  valuesOf(fields, lower).flatMap(value => value.toLowerCase().split(',').map(token => token.trim())).filter(token => token !== '')

/** A plain allowed request on a new connection gets the backend's 200: the sidecar still serves. */
export async function servesNormally (t: Test, direction: Direction, backend: Backend = 'raw'): Promise<void> {
  const connection = await direction.open(t, backend)
  connection.write('GET /public/ok HTTP/1.1\r\nHost: backend.test\r\n\r\n')
  const response = await connection.response(false, 5000).catch((err: Error) => err)
  t.equal(response instanceof Error ? response.message : `${response.status} ${response.body.toString()}`, '200 /public/ok', `${direction.name}: a normal request is still served`)
  connection.close()
}

/**
 * Sends `bytes` on a new connection and checks that the sidecar refuses them by itself: `status` with a JSON
 * error and `connection: close`, the connection closed, not a byte at the backend; then that it still serves.
 * `midBody`: the refused part comes after a body has begun (a chunked body's trailers), and the sidecar streams
 * bodies, so the head and the body's first bytes may have gone on; then the backend must get no whole request
 * (no last chunk), and its connection must not be reused (the check that the sidecar still serves shows that).
 */
export async function expectRefusal (t: Test, direction: Direction, label: string, bytes: string | Buffer, status: number, midBody = false): Promise<void> {
  const arrived = bytesSince(direction.recorder)
  const whole = direction.recorder.seen.length
  const connection = await direction.open(t, 'raw')
  connection.write(bytes)
  const response = await connection.response(false, 1500).catch((err: Error) => err)
  const name = `${direction.name}, ${label}`
  const error = response instanceof Error ? undefined : jsonBody(response)?.error
  if (response instanceof Error || response.status !== status || typeof error !== 'string') {
    // One line that says what came instead (waiting for a close that a served request will not bring is no use).
    t.fail(`${name}: ${status} from the sidecar expected, got ${response instanceof Error ? `no response (${response.message})` : `${response.line} ${JSON.stringify(response.body.toString().slice(0, 80))}`}`)
  } else {
    t.pass(`${name}: ${status} ${error}`)
    t.equal(response.headers.connection?.toLowerCase(), 'close', `${name}: connection: close`)
    t.ok(await connection.endsWithin(1000), `${name}: the connection is closed`)
  }
  if (midBody) {
    t.equal(direction.recorder.seen.length, whole, `${name}: no whole request reached the backend`)
    t.notMatch(arrived(), /\r\n0\r\n/, `${name}: the last chunk did not reach the backend`)
  } else {
    t.equal(arrived(), '', `${name}: nothing reached the backend`)
  }
  await servesNormally(t, direction)
}

/** `chaperone_connections_refused_total{listener, reason}` from the sidecar's admin /metrics (0 when absent). */
export async function refusedTotal (sidecar: RunningSidecar, listener: string, reason: string): Promise<number> {
  const text = await new Promise<string>((resolve, reject) => {
    const req = get(`http://${sidecar.address('admin')}/metrics`, { timeout: 2000 }, res => {
      let body = ''
      res.setEncoding('utf8').on('data', (chunk: string) => { body += chunk }).on('end', () => { resolve(body) })
    })
    req.on('timeout', () => { req.destroy(new Error('/metrics timed out')) }).on('error', reject)
  })
  let total = 0
  for (const line of text.split('\n')) {
    const match = /^chaperone_connections_refused_total\{([^}]*)\} (\S+)$/.exec(line)
    if (match === null) continue
    const labels = Object.fromEntries([...match[1].matchAll(/(\w+)="([^"]*)"/g)].map(([, key, value]) => [key, value]))
    if (labels.listener === listener && labels.reason === reason) total += Number(match[2])
  }
  return total
}

/** The sidecar's first `connection_refused` log line for `reason` (logs are rate-limited: the first is never suppressed). */
export async function refusalLogged (sidecar: RunningSidecar, reason: string): Promise<Record<string, unknown> | undefined> {
  return await waitFor(sidecar.logs, line => line.event === 'connection_refused' && line.reason === reason)
}
