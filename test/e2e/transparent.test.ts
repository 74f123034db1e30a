import t from 'tap'
import { once } from 'node:events'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import type { ChildProcess } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { Agent } from '../../agent/agent'
import { AdminClient } from '../../agent/admin/client'
import { loadAgentConfig } from '../../agent/config'
import { readableByOthers } from '../../demo/mesh'
import { CLI_BIN, CLI_SKIP } from '../helpers/cli'
import { IPTABLES_MISSING, NETNS_SKIP, SETPRIV_MISSING, TCPDUMP_MISSING, createTopology } from '../helpers/netns'
import type { Topology } from '../helpers/netns'

// Transparent mode on real network namespaces: each app's namespace has its TCP redirected through its sidecar
// (init-iptables), the apps are unchanged (plain node scripts that know nothing of the mesh), the agent runs on
// the host and tells the sidecars apart by uid. What the wire between them carries is captured on the bridge.

const skip = CLI_SKIP || NETNS_SKIP || IPTABLES_MISSING || TCPDUMP_MISSING || SETPRIV_MISSING
const TD = 'spiffe://plant.example'
// Each sidecar under its own uid, attested by `unix:uid`; the uids must be able to read this checkout's code.
// Where they cannot (a checkout under /root), both run as root and pick their identity with --spiffe-id.
const OWN_UIDS = CLI_SKIP === false && readableByOthers(CLI_BIN)
const SIDECAR_UID = OWN_UIDS ? { a: 61101, b: 61102 } : { a: 0, b: 0 }
const APP_UID = 65534
/** An app's node: started in /, without the test runner's NODE_OPTIONS hooks (this checkout may be closed to the app's uid). */
const NODE_APP = ['env', '--chdir=/', '-u', 'NODE_OPTIONS', process.execPath] as const
const MARKER = 'chaperone-plaintext-marker-7f3a'

const POLICY = `version: 1
rules:
  - { name: a-echoes-b, from: ["${TD}/app-a"], to: ["${TD}/app-b"], ports: [9000, 9002], action: allow }
  - { name: a-reads-b, from: ["${TD}/app-a"], to: ["${TD}/app-b"], ports: [8080], http: { methods: [GET] }, action: allow }
`
let policy: string
let topology: Topology
let agent: Agent
let dir: string
const sidecars: Record<string, { child: ChildProcess, log: () => string }> = {}

/** A TCP echo server, as an unchanged app: node with an inline script, as an ordinary user. */
const ECHO = 'require("net").createServer(s => s.pipe(s)).listen(Number(process.argv[1]), "0.0.0.0")'
/** A small HTTP server, as an unchanged app: answers with the X-Forwarded-Client-Cert it received. */
const REPORTER = 'require("http").createServer((q, s) => s.end("caller=" + (q.headers["x-forwarded-client-cert"] || "none"))).listen(8080, "0.0.0.0")'
/** A server-speaks-first service (like SMTP or MySQL): a banner on connect, before the client says anything. */
const BANNER = 'require("net").createServer(s => s.end("220 banner from app-b\\n")).listen(9002, "0.0.0.0")'
/** A client that only listens: prints what the server sends until it closes. */
const LISTENER = 'const s = require("net").connect(Number(process.argv[2]), process.argv[1]); let got = ""; s.on("data", d => { got += d }); s.on("error", e => { console.log("error " + e.code) }); s.on("close", () => console.log(got.trim()))'
/** Sequential HTTP GETs for argv[2] ms, a new connection each: prints "<ok> <failed>". */
const LOAD = `const http = require("http"); let ok = 0, failed = 0; const end = Date.now() + Number(process.argv[2]);
(function next () { if (Date.now() > end) { console.log(ok + " " + failed); return }
  http.get(process.argv[1], { agent: false }, r => { r.resume(); r.on("end", () => { r.statusCode === 200 ? ok++ : failed++; setTimeout(next, 20) }) })
    .on("error", () => { failed++; setTimeout(next, 20) }) })()`
/** A client app: connects, sends argv[3], prints what comes back (or "closed" when the connection is cut). */
const CLIENT = `const s = require("net").connect(Number(process.argv[2]), process.argv[1]); let got = "";
s.on("data", d => { got += d; if (got.length >= process.argv[3].length) { console.log(got); s.end() } });
s.on("error", e => { console.log("error " + e.code) }); s.on("close", () => { if (got.length < process.argv[3].length) console.log("closed:" + got) });
s.write(process.argv[3])`

t.before(async () => {
  if (skip !== false) return
  topology = await createTopology({ prefix: 'e2et', hosts: ['app-a', 'app-b', 'app-c'] })
  dir = mkdtempSync(join(tmpdir(), 'chaperone-e2e-'))
  chmodSync(dir, 0o755)
  const socket = join(dir, 'workload.sock')
  agent = await Agent.start(loadAgentConfig(undefined, { trustDomain: 'plant.example', dataDir: join(dir, 'agent'), socket, adminSocket: join(dir, 'admin.sock'), serverSocket: join(dir, 'server.sock') }), pino({ level: 'silent' }))
  const admin = new AdminClient(join(dir, 'admin.sock'))
  // 4 s SVIDs: the sidecars rotate every ~2 s throughout, so every test here also runs across rotations.
  for (const [name, uid] of Object.entries(SIDECAR_UID)) await admin.createEntry({ spiffe_id: `${TD}/app-${name}`, parent_id: '', selectors: [`unix:uid:${uid}`], x509_svid_ttl: 4 })
  admin.close()
  policy = join(dir, 'policy.yaml')
  writeFileSync(policy, POLICY, { mode: 0o644 })
  for (const name of ['a', 'b'] as const) {
    const host = `app-${name}`
    const init = await topology.exec(host, process.execPath, [CLI_BIN, 'proxy', 'init-iptables', '--proxy-uid', String(SIDECAR_UID[name])])
    if (init.status !== 0) throw new Error(`init-iptables in ${host}: ${init.stderr}`)
    const child = topology.spawn(host, process.execPath, [CLI_BIN, 'proxy', 'run', '--workload-api', `unix://${socket}`, '--policy', policy,
      '--spiffe-id', `${TD}/app-${name}`, '--transparent-outbound', '15001', '--transparent-inbound', '15006', '--transparent-http-ports', '8080', '--log-level', 'info'], { uid: SIDECAR_UID[name] })
    let stdout = ''
    let stderr = ''
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
    sidecars[name] = { child, log: () => stderr }
    while (!stdout.includes('admin')) {
      const [event] = await Promise.race([once(child.stdout as NodeJS.ReadableStream, 'data').then(() => ['data']), once(child, 'exit').then(() => ['exit'])])
      if (event === 'exit') throw new Error(`sidecar-${name} exited: ${stderr}`)
    }
  }
  for (const port of ['9000', '9001']) topology.spawn('app-b', NODE_APP[0], [...NODE_APP.slice(1), '-e', ECHO, port], { uid: APP_UID })
  topology.spawn('app-b', NODE_APP[0], [...NODE_APP.slice(1), '-e', REPORTER], { uid: APP_UID })
  topology.spawn('app-b', NODE_APP[0], [...NODE_APP.slice(1), '-e', BANNER], { uid: APP_UID })
  await new Promise(resolve => setTimeout(resolve, 300))
})
t.teardown(async () => {
  if (skip !== false) return
  await topology?.destroy()
  await agent?.stop()
  rmSync(dir, { recursive: true, force: true })
})

async function clientSays (host: string, port: number, text: string): Promise<string> {
  const run = await topology.exec(host, NODE_APP[0], [...NODE_APP.slice(1), '-e', CLIENT, topology.hosts['app-b'].address, String(port), text], { uid: APP_UID, timeoutMs: 10_000 })
  return run.stdout.trim()
}

void t.test('transparent – app-a reaches app-b by address and port with no proxy settings; the wire carries no plaintext', { skip }, async t => {
  if (!OWN_UIDS) t.comment('the checkout is not readable by other users: both sidecars run as root, each picking its identity by --spiffe-id')
  const capture = await topology.capture('tcp')
  t.equal(await clientSays('app-a', 9000, MARKER), MARKER, 'the echo comes back through both sidecars')
  const pcap = await capture.stop()
  t.ok(pcap.length > 500, 'the capture saw the traffic')
  t.notOk(pcap.includes(Buffer.from(MARKER)), 'the marker never crosses the bridge in plaintext')
  t.match(sidecars.b.log(), /"event":"sidecar_started"/)
})

void t.test('transparent – a port the policy does not allow is refused, and the log names the rule', { skip }, async t => {
  const answer = await clientSays('app-a', 9001, 'not allowed')
  t.match(answer, /^(error ECONNRESET\n)?closed:$/, `the app's connection is cut with nothing received (${answer})`)
  t.match(sidecars.a.log(), /"event":"denied","listener":"transparent-outbound","direction":"outbound","peer":"spiffe:\/\/plant\.example\/app-b","self":"spiffe:\/\/plant\.example\/app-a","port":9001,.*"rule":"default"/)
})

void t.test('transparent – a namespace without a sidecar cannot reach app-b\'s port in plaintext', { skip }, async t => {
  const answer = await clientSays('app-c', 9000, MARKER)
  t.not(answer, MARKER, `app-c got no echo (${answer})`)
  t.match(sidecars.b.log(), /"event":"handshake_failed","listener":"transparent-inbound"/)
})

// Last: its denial would share the rate-limited log line of the denied port above (same peer, same listener).
void t.test('transparent – HTTP ports: curl reaches app-b unchanged, app-b sees app-a\'s SPIFFE ID; a method the policy does not allow gets 403', { skip }, async t => {
  const url = `http://${topology.hosts['app-b'].address}:8080/status`
  const get = await topology.exec('app-a', 'curl', ['-sS', '-m', '5', url], { uid: APP_UID })
  t.match(get.stdout, new RegExp(`^caller=By=${TD}/app-b;Hash=[0-9a-f]{64};URI=${TD}/app-a$`), get.stderr)
  const post = await topology.exec('app-a', 'curl', ['-sS', '-m', '5', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'POST', url], { uid: APP_UID })
  t.equal(post.stdout, '403')
})

void t.test('transparent – a server-speaks-first service works through both sidecars', { skip }, async t => {
  const run = await topology.exec('app-a', NODE_APP[0], [...NODE_APP.slice(1), '-e', LISTENER, topology.hosts['app-b'].address, '9002'], { uid: APP_UID, timeoutMs: 10_000 })
  t.equal(run.stdout.trim(), '220 banner from app-b')
})

void t.test('transparent – SVID rotations and a policy reload during a stream of requests lose none', { skip }, async t => {
  const rotations = (name: 'a' | 'b'): number => (sidecars[name].log().match(/"event":"svid_updated"/g) ?? []).length
  const before = { a: rotations('a'), b: rotations('b') }
  const load = topology.exec('app-a', NODE_APP[0], [...NODE_APP.slice(1), '-e', LOAD, `http://${topology.hosts['app-b'].address}:8080/`, '6000'], { uid: APP_UID, timeoutMs: 30_000 })
  await new Promise(resolve => setTimeout(resolve, 2500))
  writeFileSync(policy, `${POLICY}  - { name: unrelated, from: ["${TD}/app-c"], to: ["${TD}/app-b"], ports: [7], action: deny }\n`)
  const [ok, failed] = (await load).stdout.trim().split(' ').map(Number)
  t.equal(failed, 0, `no request failed (${ok} succeeded)`)
  t.ok(ok > 50, 'a steady stream of requests went through')
  t.ok(rotations('a') > before.a && rotations('b') > before.b, 'both sidecars rotated their SVIDs meanwhile')
  for (const name of ['a', 'b'] as const) t.match(sidecars[name].log(), /"event":"policy_reloaded"/, `sidecar-${name} reloaded the policy meanwhile`)
})
