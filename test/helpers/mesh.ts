/**
 * A small mesh for sidecar tests (not a test itself): a real agent on Unix sockets in a temporary directory,
 * entries for this test process's uid (several identities; each sidecar picks its own with `spiffeId`, as a
 * workload with several SVIDs does), a policy file, sidecars started in-process on ephemeral ports, and simple
 * apps (a TCP echo, an HTTP server that reports what it received).
 */
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer as createHttpServer } from 'node:http'
import type { IncomingHttpHeaders, Server as HttpServer } from 'node:http'
import { createServer } from 'node:net'
import type { AddressInfo, Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { Agent } from '../../agent/agent'
import { AdminClient } from '../../agent/admin/client'
import { loadAgentConfig } from '../../agent/config'
import { loadSidecarConfig } from '../../proxy/config'
import type { SidecarFlags } from '../../proxy/config'
import { Sidecar } from '../../proxy/sidecar'
import { encodePem } from '../../spiffe/pem'
import { WorkloadClient } from '../../spiffe/workload-client'

export const TD = 'spiffe://plant.example'

/** The smallest useful policy: the client may call the server. */
export const CLIENT_TO_SERVER = `version: 1
rules:
  - name: client-to-server
    from: [${TD}/client]
    to: [${TD}/server]
    action: allow
`

export interface RunningSidecar {
  readonly sidecar: Sidecar
  /** The sidecar's JSON log lines, parsed. */
  readonly logs: Array<Record<string, unknown>>
  /** `host:port` of a listener by name, or of `admin`. */
  address: (name: string) => string
  port: (name: string) => number
}

export interface Mesh {
  readonly dir: string
  readonly workloadApi: string
  /** The agent's admin socket, for the CLI (`--admin-socket`). */
  readonly adminSocket: string
  readonly policyFile: string
  readonly admin: AdminClient
  /** Stops the agent (sidecars keep their last SVID until it expires); `startAgent` brings it back, same data and sockets. */
  stopAgent: () => Promise<void>
  startAgent: () => Promise<void>
  writePolicy: (text: string) => void
  /** Registers an identity for this process (all identities are the same process's; sidecars pick by ID). */
  register: (id: string, x509TtlSeconds?: number) => Promise<void>
  /** A registered identity's SVID as PEM files' contents, for clients that are not sidecars (openssl, curl, node tls). */
  svid: (id: string) => Promise<{ certPem: string, keyPem: string, bundlePem: string }>
  startSidecar: (id: string, flags: SidecarFlags, extra?: Record<string, unknown>) => Promise<RunningSidecar>
  close: () => Promise<void>
}

export async function startMesh (policy: string): Promise<Mesh> {
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-mesh-'))
  const socket = join(dir, 'workload.sock')
  const adminSocket = join(dir, 'admin.sock')
  const agentConfig = loadAgentConfig(undefined, { trustDomain: 'plant.example', dataDir: join(dir, 'data'), socket, adminSocket, serverSocket: join(dir, 'server.sock') })
  let agent: Agent | undefined = await Agent.start(agentConfig, pino({ level: 'silent' }))
  // The admin connection is closed while the agent is stopped: an open one would hold its shutdown for 5 s.
  let admin: AdminClient | undefined
  const adminClient = (): AdminClient => admin ??= new AdminClient(adminSocket)
  const policyFile = join(dir, 'policy.yaml')
  writeFileSync(policyFile, policy)
  const sidecars: Sidecar[] = []
  return {
    dir,
    workloadApi: `unix://${socket}`,
    adminSocket,
    policyFile,
    get admin (): AdminClient { return adminClient() },
    stopAgent: async () => {
      admin?.close()
      admin = undefined
      await agent?.stop()
      agent = undefined
    },
    startAgent: async () => {
      agent ??= await Agent.start(agentConfig, pino({ level: 'silent' }))
    },
    writePolicy: text => { writeFileSync(policyFile, text) },
    register: async (id, x509TtlSeconds) => {
      await adminClient().createEntry({ spiffe_id: id, parent_id: '', selectors: [`unix:uid:${process.getuid?.() ?? 0}`], ...(x509TtlSeconds === undefined ? {} : { x509_svid_ttl: x509TtlSeconds }) })
    },
    svid: async id => {
      const client = new WorkloadClient(`unix://${socket}`)
      try {
        const svid = (await client.fetchX509Svid()).svids.find(s => s.spiffeId === id)
        if (svid === undefined) throw new Error(`no SVID for ${id}: register it first`)
        return {
          certPem: encodePem('CERTIFICATE', svid.chain),
          keyPem: svid.key.export({ type: 'pkcs8', format: 'pem' }) as string,
          bundlePem: encodePem('CERTIFICATE', svid.bundle.authorities.map(cert => cert.raw))
        }
      } finally {
        client.close()
      }
    },
    startSidecar: async (id, flags, extra = {}) => {
      const logs: Array<Record<string, unknown>> = []
      const logger = pino({ level: 'debug' }, { write: (line: string) => { logs.push(JSON.parse(line) as Record<string, unknown>) } })
      const file = join(dir, `sidecar-${sidecars.length}.json`)
      writeFileSync(file, JSON.stringify({ admin: '127.0.0.1:0', drain: 2, readyTimeout: 10, ...extra }))
      const sidecar = await Sidecar.start(loadSidecarConfig(file, { workloadApi: `unix://${socket}`, policy: policyFile, spiffeId: id, ...flags }), logger)
      sidecars.push(sidecar)
      const address = (name: string): string => sidecar.addresses()[name]
      return { sidecar, logs, address, port: name => Number(address(name).split(':').at(-1)) }
    },
    close: async () => {
      await Promise.all(sidecars.map(async s => { await s.stop(0) }))
      admin?.close()
      await agent?.stop()
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

/** A TCP echo server on loopback. */
export async function echoServer (): Promise<{ server: Server, port: number }> {
  const server = createServer(socket => { socket.on('error', () => { socket.destroy() }).pipe(socket) })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { server, port: (server.address() as AddressInfo).port }
}

export interface SeenRequest { method?: string, url?: string, headers: IncomingHttpHeaders }

/** An HTTP app on loopback that answers with what it received (method, url, headers) as JSON. */
export async function reportingApp (): Promise<{ server: HttpServer, port: number, seen: SeenRequest[] }> {
  const seen: SeenRequest[] = []
  const server = createHttpServer((req, res) => {
    const request = { method: req.method, url: req.url, headers: req.headers }
    seen.push(request)
    req.resume().on('end', () => { res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(request)) })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { server, port: (server.address() as AddressInfo).port, seen }
}
