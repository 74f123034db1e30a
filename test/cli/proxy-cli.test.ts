import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { connect as tlsConnect } from 'node:tls'
import type { TLSSocket } from 'node:tls'
import { CLI_BIN, CLI_SKIP as skip, runCli } from '../helpers/cli'
import { CLIENT_TO_SERVER, TD, echoServer, startMesh } from '../helpers/mesh'
import type { Mesh } from '../helpers/mesh'

// `chaperone proxy run` and `proxy wait` as an operator and an app entrypoint use them: the built bin, the real
// agent (in this process), SIGTERM draining the open connection before exiting 0.

let mesh: Mesh
t.before(async () => {
  if (skip !== false) return
  mesh = await startMesh(CLIENT_TO_SERVER)
  for (const name of ['client', 'server']) await mesh.register(`${TD}/${name}`)
})
t.teardown(async () => { await mesh?.close() })

async function mtlsTo (port: number): Promise<TLSSocket> {
  const svid = await mesh.svid(`${TD}/client`)
  const socket = tlsConnect({ port, host: '127.0.0.1', cert: svid.certPem, key: svid.keyPem, rejectUnauthorized: false })
  await once(socket, 'secureConnect')
  return socket.setEncoding('utf8')
}

void t.test('proxy cli – run prints its addresses, wait returns when ready, SIGTERM drains then exits 0', { skip }, async t => {
  const app = await echoServer()
  t.teardown(() => { app.server.close() })
  const child = spawn(process.execPath, [CLI_BIN, 'proxy', 'run', '--workload-api', mesh.workloadApi, '--spiffe-id', `${TD}/server`,
    '--policy', mesh.policyFile, '--admin', '127.0.0.1:0', '--inbound', `127.0.0.1:0=127.0.0.1:${app.port}`], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const exited = once(child, 'exit') as Promise<[number | null, string | null]>
  t.teardown(() => { child.kill('SIGKILL') })
  while (!/admin +\S+:\d+\n/.test(stdout)) await Promise.race([once(child.stdout, 'data'), exited.then(() => { throw new Error(`exited early: ${stderr}`) })])
  t.match(stdout, `chaperone sidecar running as ${TD}/server\n`)
  const inbound = Number(/inbound-1 +127\.0\.0\.1:(\d+)/.exec(stdout)?.[1])
  const admin = /admin +(\S+:\d+)/.exec(stdout)?.[1] ?? ''

  const wait = await runCli(['proxy', 'wait', '--admin', admin, '--timeout', '10'])
  t.equal(wait.status, 0, wait.stderr)
  const socket = await mtlsTo(inbound)
  socket.write('before')
  t.equal((await once(socket, 'data'))[0], 'before')

  // SIGHUP reloads the policy (the file is the same: counted as unchanged); the process keeps running.
  child.kill('SIGHUP')
  const unchanged = 'chaperone_policy_reloads_total{result="unchanged"} 1'
  const deadline = Date.now() + 5000
  let metrics = ''
  while (!metrics.includes(unchanged) && Date.now() < deadline) {
    metrics = await (await fetch(`http://${admin}/metrics`)).text()
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  t.match(metrics, unchanged, 'SIGHUP reloaded the policy')

  child.kill('SIGTERM')
  while (!stderr.includes('"event":"draining"')) await once(child.stderr, 'data')
  await t.rejects(mtlsTo(inbound), { code: 'ECONNREFUSED' }, 'no new connections while draining')
  socket.write('during the drain')
  t.equal((await once(socket, 'data'))[0], 'during the drain', 'the open connection still works')
  socket.end()
  const [code] = await exited
  t.equal(code, 0, 'exits 0 once drained')
  t.match(stderr, /"event":"stopped","cutConnections":0/)
})

void t.test('proxy cli – wait gives up with what is missing; bad configuration exits 2', { skip }, async t => {
  const wait = await runCli(['proxy', 'wait', '--admin', '127.0.0.1:1', '--timeout', '0.5'])
  t.equal(wait.status, 1)
  t.match(wait.stderr, /the sidecar at 127\.0\.0\.1:1 is not ready after 0\.5 s: cannot reach the admin endpoint \(connect ECONNREFUSED/)
  const badTimeout = await runCli(['proxy', 'wait', '--admin', '127.0.0.1:1', '--timeout', '1 minute'])
  t.equal(badTimeout.stderr, 'error: --timeout is a duration: whole seconds (30) or 30s, 5m, 1h, 1h30m\n(see `chaperone proxy wait --help`)\n', 'a duration as everywhere else')
  t.equal(badTimeout.status, 2)
  const noPolicy = await runCli(['proxy', 'run', '--inbound', '0.0.0.0:8443=127.0.0.1:8080'])
  t.equal(noPolicy.status, 2)
  t.match(noPolicy.stderr, 'missing required field "policy"')
  const unsafe = await runCli(['proxy', 'run', '--policy', mesh.policyFile, '--inbound', '0.0.0.0:8443=10.1.2.3:8080'])
  t.equal(unsafe.status, 2)
  t.match(unsafe.stderr, '10.1.2.3 is not loopback')
  const noAgent = await runCli(['proxy', 'run', '--policy', mesh.policyFile, '--workload-api', `unix://${mesh.dir}/nothing.sock`, '--ready-timeout', '1s', '--inbound', '127.0.0.1:0=127.0.0.1:9'])
  t.equal(noAgent.status, 1)
  t.match(noAgent.stderr, `${mesh.dir}/nothing.sock`, 'the error names the socket to check')
})
