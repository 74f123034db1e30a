/**
 * `chaperone demo` (what `npm start` runs): starts the demo mesh, makes one call the policy allows and one it
 * denies, prints who called whom, the deciding rule and the peer ID app-b saw, then keeps running with the admin
 * URLs printed until Ctrl-C (or stops at once with `--once`), cleaning up after itself.
 */
import { request } from 'node:http'
import { startDemoMesh } from './mesh'
import type { DemoMesh, DemoSidecar } from './mesh'

interface CallResult { status: number, body: string }

async function call (address: string, path: string): Promise<CallResult> {
  const [host, port] = address.split(/:(?=\d+$)/)
  return await new Promise((resolve, reject) => {
    request({ host, port: Number(port), path, method: 'GET' }, res => {
      let body = ''
      res.setEncoding('utf8').on('data', (chunk: string) => { body += chunk }).on('end', () => { resolve({ status: res.statusCode ?? 0, body }) })
    }).on('error', reject).end()
  })
}

function who (sidecar: DemoSidecar): string {
  return `${sidecar.id}${sidecar.uid === undefined ? '' : ` (uid ${sidecar.uid})`}`
}

function describeMesh (mesh: DemoMesh): string[] {
  const { a, b, c } = mesh.sidecars
  const rooted = b.uid !== undefined
  return [
    `Chaperone demo mesh — trust domain plant.example, everything on loopback (${mesh.dir})`,
    `  agent      Workload API ${mesh.workloadApi}`,
    `  app-b      an HTTP server on ${mesh.appB}, reachable only through sidecar-b`,
    `  sidecar-b  ${who(b)}: mTLS in on ${b.addresses['inbound-1']} → app-b`,
    `  sidecar-a  ${who(a)}: app-a's way out, plain HTTP in on ${a.addresses['outbound-1']} → mTLS to sidecar-b`,
    `  sidecar-c  ${who(c)}: app-c's way out, plain HTTP in on ${c.addresses['outbound-1']} → mTLS to sidecar-b`,
    rooted
      ? '  Each sidecar runs under its own uid: the agent tells them apart by the kernel\'s peer credentials.'
      : `  ${process.getuid?.() === 0 ? 'The checkout is not readable by other users, so' : 'Not root:'} every sidecar runs as you: the agent issues all three identities to you and each\n  sidecar picks its own (\`--spiffe-id\`). Run as root from a world-readable checkout to see identities told apart by uid.`,
    `  policy     ${mesh.policyFile}: app-a may GET from app-b; everything else is denied`,
    ''
  ]
}

/** The rules sidecar-b's metrics say allowed requests, e.g. `app-a-reads-app-b`. */
async function allowingRules (mesh: DemoMesh): Promise<string[]> {
  const metrics = (await call(mesh.sidecars.b.addresses.admin, '/metrics')).body
  return [...metrics.matchAll(/^chaperone_connections_total\{[^}]*decision="allow",rule="([^"]+)"\} [1-9]/gm)].map(m => m[1])
}

/** sidecar-c's `denied` line: its log arrives through a pipe, possibly after the 403 did, so it is waited for (5 s at most). */
async function deniedLine (mesh: DemoMesh): Promise<Record<string, unknown> | undefined> {
  for (const until = Date.now() + 5000; Date.now() < until; await new Promise(resolve => setTimeout(resolve, 50))) {
    const logged = mesh.sidecars.c.logs().find(line => line.event === 'denied')
    if (logged !== undefined) return logged
  }
  return undefined
}

async function describeCall (n: number, from: string, result: CallResult, mesh: DemoMesh): Promise<string[]> {
  const verdict = result.status === 200 ? 'an allowed call' : 'a call the policy denies'
  const lines = [`${n}. ${from} → app-b: GET /hello — HTTP ${result.status}, ${verdict}`]
  if (result.status === 200) {
    lines.push(`   sidecar-b allowed it by rule ${(await allowingRules(mesh)).map(rule => JSON.stringify(rule)).join(', ')} (from its /metrics)`)
    lines.push(`   app-b saw the caller as ${mesh.lastCaller() ?? '(nobody)'} (from X-Forwarded-Client-Cert, set by sidecar-b alone)`)
    lines.push(`   app-b answered: ${result.body.trim()}`)
  } else {
    const denial = JSON.parse(result.body) as { rule?: string, reason?: string }
    lines.push(`   the policy denies it: rule ${JSON.stringify(denial.rule)} — ${denial.reason ?? ''}`)
    const logged = await deniedLine(mesh)
    lines.push('   sidecar-c refused before anything left app-c\'s side; its log says:')
    if (logged !== undefined) {
      const { event, listener, peer, self, method, path, rule, reason } = logged
      lines.push(`   ${JSON.stringify({ event, listener, self, peer, method, path, rule, reason })}`)
    }
  }
  return [...lines, '']
}

export async function runDemo (cliMain: string, options: { once: boolean }): Promise<void> {
  const out = (lines: string[]): void => { process.stdout.write(`${lines.join('\n')}\n`) }
  out(['Starting the demo mesh …'])
  const mesh = await startDemoMesh(cliMain)
  try {
    out(describeMesh(mesh))
    out(await describeCall(1, 'app-a', await call(mesh.sidecars.a.addresses['outbound-1'], '/hello'), mesh))
    out(await describeCall(2, 'app-c', await call(mesh.sidecars.c.addresses['outbound-1'], '/hello'), mesh))
    // With --once everything stops now: addresses to try would be dead before anyone could.
    if (options.once) return
    const { a, b, c } = mesh.sidecars
    out([
      'Admin endpoints (/live /ready /metrics /status):',
      ...[a, b, c].map(s => `  ${s.name}  http://${s.addresses.admin}/status`),
      `Try: curl http://${a.addresses['outbound-1']}/hello   ·   curl http://${b.addresses.admin}/metrics`,
      '',
      'Running; Ctrl-C stops everything and removes the temporary files.'
    ])
    await new Promise<void>(resolve => {
      process.once('SIGINT', () => { resolve() })
      process.once('SIGTERM', () => { resolve() })
    })
  } finally {
    await mesh.stop()
    out(['Demo stopped and cleaned up.'])
  }
}
