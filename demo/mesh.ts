/**
 * The demo mesh of `npm start`, on loopback: the agent (in this process, temporary data directory), three
 * registered workloads, app-b (an HTTP server that reports who called it), and a sidecar process beside each
 * app. As root each sidecar runs under its own uid and is told apart by the kernel (`unix:uid` selectors); as an
 * ordinary user all run as you, so the agent issues every identity to you and each sidecar picks its own.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import pino from 'pino'
import { Agent } from '../agent/agent'
import { AdminClient } from '../agent/admin/client'
import { loadAgentConfig } from '../agent/config'
import { peerIdFromRequest } from '../spiffe/peer-header'

export const TRUST_DOMAIN = 'plant.example'
const ID = (name: string): string => `spiffe://${TRUST_DOMAIN}/${name}`

export const DEMO_POLICY = `# The demo's policy: app-a may read app-b; nothing else is allowed (default deny).
version: 1
defaultAction: deny
rules:
  - name: app-a-reads-app-b
    from: [${ID('app-a')}]
    to:   [${ID('app-b')}]
    http: { methods: [GET], paths: ["/*"] }
    action: allow
`

export interface DemoSidecar {
  readonly name: string
  readonly id: string
  readonly uid: number | undefined
  readonly addresses: Record<string, string>
  /** The sidecar's JSON log lines so far. */
  readonly logs: () => Array<Record<string, unknown>>
}

export interface DemoMesh {
  readonly dir: string
  readonly workloadApi: string
  readonly policyFile: string
  readonly appB: string
  readonly sidecars: Record<'a' | 'b' | 'c', DemoSidecar>
  /** What app-b last saw as its caller. */
  lastCaller: () => string | undefined
  stop: () => Promise<void>
}

/**
 * Whether a process of another user can run code from `path`: every directory above it searchable by others, the
 * path itself readable. A checkout under /root (mode 0700) is not, and then sidecars cannot run under other uids.
 */
export function readableByOthers (path: string): boolean {
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    if ((statSync(dir).mode & 0o001) === 0) return false
    if (dirname(dir) === dir) break
  }
  return (statSync(path).mode & 0o004) !== 0
}

/** uids for the sidecars when running as root (distinct, so the kernel tells them apart); else all run as you. */
function uidFor (index: number, cliMain: string): number | undefined {
  return process.getuid?.() === 0 && readableByOthers(cliMain) ? 61001 + index : undefined
}

export async function startDemoMesh (cliMain: string): Promise<DemoMesh> {
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-demo-'))
  chmodSync(dir, 0o755) // sidecars under other uids must reach the Workload API socket and read the policy
  const socket = join(dir, 'workload.sock')
  const adminSocket = join(dir, 'admin.sock')
  const policyFile = join(dir, 'policy.yaml')
  writeFileSync(policyFile, DEMO_POLICY, { mode: 0o644 })
  const agent = await Agent.start(loadAgentConfig(undefined, { trustDomain: TRUST_DOMAIN, dataDir: join(dir, 'agent'), socket, adminSocket, serverSocket: join(dir, 'server.sock'), logLevel: 'warn' }), pino({ level: 'silent' }))
  const children: ChildProcess[] = []
  let lastCaller: string | undefined
  const app = createServer((req, res) => {
    // What a platform service behind a sidecar may do: read the caller's verified ID from the sidecar's header.
    lastCaller = peerIdFromRequest(req)?.toString()
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`hello from app-b, ${lastCaller ?? 'stranger'}\n`)
  })
  const stop = async (): Promise<void> => {
    await Promise.all(children.map(async child => {
      if (child.exitCode !== null) return
      child.kill('SIGTERM')
      await once(child, 'exit')
    }))
    app.close()
    await agent.stop()
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    const admin = new AdminClient(adminSocket)
    const names = ['app-a', 'app-b', 'app-c']
    try {
      for (const [index, name] of names.entries()) {
        await admin.createEntry({ spiffe_id: ID(name), parent_id: '', selectors: [`unix:uid:${uidFor(index, cliMain) ?? process.getuid?.() ?? 0}`] })
      }
    } finally {
      admin.close()
    }
    app.listen(0, '127.0.0.1')
    await once(app, 'listening')
    const appB = `127.0.0.1:${(app.address() as AddressInfo).port}`
    const start = async (index: number, listeners: string[]): Promise<DemoSidecar> => {
      const { child, addresses, logs } = await startSidecar(cliMain, { workloadApi: `unix://${socket}`, id: ID(names[index]), uid: uidFor(index, cliMain), policyFile, listeners })
      children.push(child)
      return { name: `sidecar-${names[index].slice(-1)}`, id: ID(names[index]), uid: uidFor(index, cliMain), addresses, logs }
    }
    const b = await start(1, ['--inbound-http', `127.0.0.1:0=${appB}`])
    const inbound = b.addresses['inbound-1']
    const [a, c] = await Promise.all([0, 2].map(async index => await start(index, ['--outbound-http', `127.0.0.1:0=${inbound}@${ID('app-b')}`])))
    return { dir, workloadApi: `unix://${socket}`, policyFile, appB, sidecars: { a, b, c }, lastCaller: () => lastCaller, stop }
  } catch (err) {
    await stop()
    throw err
  }
}

interface SidecarSpec { workloadApi: string, id: string, uid: number | undefined, policyFile: string, listeners: string[] }

/** A `chaperone proxy run` process; resolves with its bound addresses once it prints them. */
async function startSidecar (cliMain: string, spec: SidecarSpec): Promise<{ child: ChildProcess, addresses: Record<string, string>, logs: () => Array<Record<string, unknown>> }> {
  const child = spawn(process.execPath, [cliMain, 'proxy', 'run', '--workload-api', spec.workloadApi, '--spiffe-id', spec.id, '--policy', spec.policyFile,
    '--admin', '127.0.0.1:0', '--log-level', 'warn', '--ready-timeout', '15s', ...spec.listeners], {
    stdio: ['ignore', 'pipe', 'pipe'], ...(spec.uid === undefined ? {} : { uid: spec.uid, gid: spec.uid })
  })
  let stdout = ''
  let stderr = ''
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  while (!/^ {2}admin +\S+$/m.test(stdout)) {
    const [event] = await Promise.race([once(child.stdout as NodeJS.ReadableStream, 'data').then(() => ['data']), once(child, 'exit').then(() => ['exit'])])
    if (event === 'exit') throw new Error(`the sidecar for ${spec.id} exited: ${stderr.trim()}`)
  }
  const addresses = Object.fromEntries([...stdout.matchAll(/^ {2}(\S+) +(\S+:\d+)$/gm)].map(m => [m[1], m[2]]))
  const logs = (): Array<Record<string, unknown>> => stderr.split('\n').filter(line => line.startsWith('{')).map(line => JSON.parse(line) as Record<string, unknown>)
  return { child, addresses, logs }
}
