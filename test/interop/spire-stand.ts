/**
 * A real SPIRE deployment for an interop test: `spire-server` (SQLite datastore, in-memory CA keys, join-token node
 * attestation and, on request, x509pop with given manufacturer roots; short X509-SVID TTL) and one `spire-agent` attested with a join token, serving its Workload API on
 * a Unix socket with the `unix` workload attestor. Entries are made with `spire-server entry create`, as operators
 * do; the agent can be stopped and started again on the same data directory (it reloads its own SVID and key, no
 * new attestation). Everything lives in a short folder under /tmp (a Unix socket path has at most 107 bytes) and is
 * stopped and removed at the test's end; SPIRE's logs are kept in memory and shown when the test failed. Both may run
 * inside a network namespace, the server listening on that namespace's address (`netns`, `bindAddress`). On request
 * the server serves its trust domain's bundle endpoint (`bundleEndpoint`), and the agent its admin socket with the Delegated
 * Identity API (`authorizedDelegates`). Not a test itself.
 */
import type { Test } from 'tap'
import { X509Certificate } from 'node:crypto'
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { must, run, waitFor } from '../helpers/command'
import type { CommandOptions, CommandResult } from '../helpers/command'
import { freePort } from '../../bench/proxy/processes'
import { spireAgent, spireServer } from './peers'
import { LOG_LINES, SpireProcess } from './spire-process'

export interface SpireStandOptions {
  /** The trust domain's name; `spire.example` by default. */
  trustDomain?: string
  /** The server's `default_x509_svid_ttl` in seconds (entries may set their own); 60 by default. */
  x509SvidTtl?: number
  /**
   * Also attest agents by x509pop (next to join_token): the manufacturer roots, PEM, that the server's
   * `ca_bundle_path` holds. Devices then attest over TCP at `serverAddress`, trusting `bundlePem()`.
   */
  x509popCaBundlePem?: string
  /** Keep the server's CA keys on disk (KeyManager "disk"), so `stopServer` + `startServer` keeps its CA. */
  restartableServer?: boolean
  /**
   * Nest the server under an upstream (UpstreamAuthority "spire"): its CA is signed by the server at `address`
   * (`host:port`), called with the X509-SVID the Workload API at `workloadApiSocket` (a path) gives the server's uid.
   */
  upstreamAuthority?: { address: string, workloadApiSocket: string }
  /** The address the server listens on (and the agent dials); 127.0.0.1 by default. */
  bindAddress?: string
  /** Run server and agent inside this network namespace (`ip netns exec NS …`, as root); the root namespace by default. */
  netns?: string
  /** Serve the trust domain's SPIFFE bundle endpoint (https_spiffe: the server's own SVID) at `bindAddress:port`, with this refresh hint (e.g. `4s`). */
  bundleEndpoint?: { port: number, refreshHint: string }
  /** Serve the agent's admin socket (`adminSocket`) with the Delegated Identity API for these delegates' SPIFFE IDs. */
  authorizedDelegates?: readonly string[]
}

export interface SpireEntry {
  spiffeId: string
  /** `type:value`, e.g. `unix:uid:0`. */
  selectors: string[]
  /** Seconds; the server's default when left out. */
  x509SvidTtl?: number
  /** Trust domains (`spiffe://other` or `other`) whose bundles the workload also gets; the bundle must be set first. */
  federatesWith?: string[]
  /** The node's ID (`nodeId`) when left out. */
  parentId?: string
  /** `-downstream`: the entry's SVID may call NewDownstreamX509CA (a nested server's, or a device's). */
  downstream?: boolean
}

/** One X509-SVID as `spire-agent api fetch x509` wrote it. */
export interface FetchedSvid {
  spiffeId: string
  /** The chain, leaf first, as PEM. */
  certPem: string
  keyPem: string
  bundlePem: string
  /** The leaf's serial number, hex as Node prints it. */
  serial: string
}

export interface SpireStand {
  readonly trustDomain: string
  /** The temporary folder holding configs, data and sockets. */
  readonly dir: string
  /** The agent's Workload API, `unix:///…`, for SPIFFE_ENDPOINT_SOCKET or a sidecar's `workloadApi`. */
  readonly workloadApi: string
  readonly agentSocket: string
  /** The agent's admin socket (Delegated Identity API), with `authorizedDelegates`: 0770, root's. */
  readonly adminSocket: string | undefined
  readonly serverSocket: string
  /** The server's TCP listener (`bind_address:bind_port`), where agents attest: `127.0.0.1:<port>`. */
  readonly serverAddress: string
  /**
   * `spiffe://TD/node`: the alias `token generate -spiffeID` makes for the agent (whose own ID is
   * `spiffe://TD/spire/agent/join_token/<token>`), the parent of entries by default.
   */
  readonly nodeId: string
  readonly serverBinary: string
  readonly agentBinary: string
  /** `spire-server ARGS -socketPath …`, any subcommand that takes the flag; whatever its status. */
  serverCommand: (args: readonly string[], opts?: CommandOptions) => Promise<CommandResult>
  /** The same, which must succeed: its stdout. */
  server: (...args: string[]) => Promise<string>
  /** `spire-agent ARGS -socketPath <agent socket>` (`api …`, `healthcheck`), run by this process; whatever its status. */
  agentCommand: (args: readonly string[], opts?: CommandOptions) => Promise<CommandResult>
  /** The trust domain's X.509 bundle, PEM (`spire-server bundle show`). */
  bundlePem: () => Promise<string>
  /** `spire-server entry create`; the new entry's ID. */
  createEntry: (entry: SpireEntry) => Promise<string>
  /** Every X509-SVID the agent gives this process now (`spire-agent api fetch x509 -write`). */
  fetchX509: () => Promise<FetchedSvid[]>
  /** Waits until the agent gives this process an SVID for each of `ids` (the agent syncs entries every 5 s). */
  waitForSvids: (ids: readonly string[], ms?: number) => Promise<FetchedSvid[]>
  /** Stops the agent (SIGTERM, then waits for it to exit). */
  stopAgent: () => Promise<void>
  /** Starts the agent again on the same data directory and socket; resolves once it is healthy. */
  startAgent: () => Promise<void>
  /** Stops the server (SIGTERM, then waits for it to exit). */
  stopServer: () => Promise<void>
  /** Starts the server again on the same data directory and port; resolves once it is healthy. */
  startServer: () => Promise<void>
  /** The last lines SPIRE logged, server's and agent's, labelled. */
  logs: () => string
}

/** An x509pop NodeAttestor trusting the manufacturer roots in `caBundlePath` (SPIRE's defaults otherwise). */
function x509popAttestorConfig (caBundlePath: string): string {
  return `
  NodeAttestor "x509pop" {
    plugin_data {
      ca_bundle_path = "${caBundlePath}"
    }
  }`
}

/** UpstreamAuthority "spire": the server's CA signed by the upstream server, as a nested SPIRE server's is. */
function spireUpstreamAuthorityConfig (upstream: { address: string, workloadApiSocket: string }): string {
  const [host, port] = [upstream.address.slice(0, upstream.address.lastIndexOf(':')), upstream.address.slice(upstream.address.lastIndexOf(':') + 1)]
  return `
  UpstreamAuthority "spire" {
    plugin_data {
      server_address = "${host}"
      server_port = "${port}"
      workload_api_socket = "${upstream.workloadApiSocket}"
    }
  }`
}

/** The server's keys: in memory, or on disk where a restarted server finds its CA again. */
function keyManagerConfig (dir: string, onDisk: boolean): string {
  return onDisk
    ? `KeyManager "disk" {
    plugin_data {
      keys_path = "${join(dir, 'server', 'keys.json')}"
    }
  }`
    : `KeyManager "memory" {
    plugin_data {}
  }`
}

/** `federation.bundle_endpoint`: the trust domain's bundle served over https_spiffe. */
function bundleEndpointConfig (address: string, endpoint: { port: number, refreshHint: string }): string {
  return `
  federation {
    bundle_endpoint {
      address = "${address}"
      port = ${endpoint.port}
      refresh_hint = "${endpoint.refreshHint}"
      profile "https_spiffe" {}
    }
  }`
}

function serverConfig (dir: string, trustDomain: string, port: number, x509SvidTtl: number, extraPlugins = '', keysOnDisk = false, bindAddress = '127.0.0.1', federation = ''): string {
  return `server {
  bind_address = "${bindAddress}"
  bind_port = "${port}"
  socket_path = "${join(dir, 's.sock')}"
  trust_domain = "${trustDomain}"
  data_dir = "${join(dir, 'server')}"
  log_level = "INFO"
  # The CA far outlives the SVIDs, so no SVID is cut short by the CA's own end.
  ca_ttl = "24h"
  default_x509_svid_ttl = "${x509SvidTtl}s"
  # The agent's own SVID lives long: a restarted agent reloads it instead of attesting again (a join token is single-use).
  agent_ttl = "1h"${federation}
}
plugins {
  DataStore "sql" {
    plugin_data {
      database_type = "sqlite3"
      connection_string = "${join(dir, 'server', 'datastore.sqlite3')}"
    }
  }
  ${keyManagerConfig(dir, keysOnDisk)}
  NodeAttestor "join_token" {
    plugin_data {}
  }${extraPlugins}
}
`
}

/** `admin_socket_path`, which SPIRE wants outside the Workload API socket's folder, and who may call it. */
function adminConfig (adminSocket: string, delegates: readonly string[]): string {
  return `
  admin_socket_path = "${adminSocket}"
  authorized_delegates = [${delegates.map(id => `"${id}"`).join(', ')}]`
}

function agentConfig (dir: string, trustDomain: string, port: number, serverAddress = '127.0.0.1', admin = ''): string {
  return `agent {
  data_dir = "${join(dir, 'agent')}"
  log_level = "INFO"
  server_address = "${serverAddress}"
  server_port = "${port}"
  socket_path = "${join(dir, 'a.sock')}"
  trust_bundle_path = "${join(dir, 'bundle.pem')}"
  trust_domain = "${trustDomain}"${admin}
}
plugins {
  NodeAttestor "join_token" {
    plugin_data {}
  }
  # On disk, so the agent's key survives a restart along with its SVID.
  KeyManager "disk" {
    plugin_data {
      directory = "${join(dir, 'agent')}"
    }
  }
  WorkloadAttestor "unix" {
    plugin_data {}
  }
}
`
}

/** Starts SPIRE server and agent; both are stopped and their folder removed when `t` ends. */
export async function startSpireStand (t: Test, options: SpireStandOptions = {}): Promise<SpireStand> {
  const trustDomain = options.trustDomain ?? 'spire.example'
  const serverBinary = await spireServer()
  const agentBinary = await spireAgent()
  const dir = mkdtempSync('/tmp/spire-')
  const serverSocket = join(dir, 's.sock')
  const agentSocket = join(dir, 'a.sock')
  const adminSocket = options.authorizedDelegates === undefined ? undefined : join(mkdtempSync(`${dir}-admin-`), 'admin.sock')
  // Open to other users, so the socket's own mode (0770, root's) decides who may call it, as in a deployment.
  if (adminSocket !== undefined) chmodSync(dirname(adminSocket), 0o755)
  const nodeId = `spiffe://${trustDomain}/node`
  const bindAddress = options.bindAddress ?? '127.0.0.1'
  const server = new SpireProcess('spire-server', options.netns)
  const agent = new SpireProcess('spire-agent', options.netns)
  const logs = (): string => `${server.tail()}\n${agent.tail()}`
  t.teardown(async () => {
    await agent.stop()
    await server.stop()
    if (!t.passing()) t.comment(`SPIRE's logs (last ${LOG_LINES} lines each):\n${logs()}`)
    rmSync(dir, { recursive: true, force: true })
    if (adminSocket !== undefined) rmSync(dirname(adminSocket), { recursive: true, force: true })
  })

  const serverCommand = async (args: readonly string[], opts: CommandOptions = {}): Promise<CommandResult> =>
    await run(serverBinary, [...args, '-socketPath', serverSocket], { timeoutMs: 30_000, ...opts })
  const serverMust = async (...args: string[]): Promise<string> => await must(serverBinary, [...args, '-socketPath', serverSocket], { timeoutMs: 30_000 })
  const agentCommand = async (args: readonly string[], opts: CommandOptions = {}): Promise<CommandResult> =>
    await run(agentBinary, [...args, '-socketPath', agentSocket], { timeoutMs: 30_000, ...opts })
  /** Polls a healthcheck; gives up at once, with the logs, when the process has exited. */
  const healthy = async (process: SpireProcess, check: () => Promise<CommandResult>): Promise<void> => {
    await waitFor(`${process.label} to be healthy`, 60_000, async () => {
      if (!process.running) throw new Error(`${process.label} exited:\n${process.tail()}`)
      return (await check()).status === 0 ? true : undefined
    })
  }

  const port = await freePort()
  let extraPlugins = ''
  if (options.x509popCaBundlePem !== undefined) {
    writeFileSync(join(dir, 'x509pop-ca.pem'), options.x509popCaBundlePem)
    extraPlugins = x509popAttestorConfig(join(dir, 'x509pop-ca.pem'))
  }
  if (options.upstreamAuthority !== undefined) extraPlugins += spireUpstreamAuthorityConfig(options.upstreamAuthority)
  writeFileSync(join(dir, 'server.conf'), serverConfig(dir, trustDomain, port, options.x509SvidTtl ?? 60, extraPlugins, options.restartableServer === true, bindAddress,
    options.bundleEndpoint === undefined ? '' : bundleEndpointConfig(bindAddress, options.bundleEndpoint)))
  writeFileSync(join(dir, 'agent.conf'), agentConfig(dir, trustDomain, port, bindAddress,
    adminSocket === undefined ? '' : adminConfig(adminSocket, options.authorizedDelegates ?? [])))
  const startServer = async (): Promise<void> => {
    server.start(serverBinary, ['run', '-config', join(dir, 'server.conf')])
    await healthy(server, async () => await serverCommand(['healthcheck']))
  }
  await startServer()
  // The agent trusts the server by this bundle, not by an insecure bootstrap.
  const bundlePem = async (): Promise<string> => await serverMust('bundle', 'show', '-format', 'pem')
  writeFileSync(join(dir, 'bundle.pem'), await bundlePem())
  const token = /Token: (\S+)/.exec(await serverMust('token', 'generate', '-spiffeID', nodeId))?.[1]
  if (token === undefined) throw new Error('spire-server token generate printed no token')
  const startAgent = async (joinToken?: string): Promise<void> => {
    agent.start(agentBinary, ['run', '-config', join(dir, 'agent.conf'), ...joinToken === undefined ? [] : ['-joinToken', joinToken]])
    await healthy(agent, async () => await agentCommand(['healthcheck']))
  }
  await startAgent(token)

  const fetchX509 = async (): Promise<FetchedSvid[]> => {
    const out = mkdtempSync(join(dir, 'fetch-'))
    try {
      const fetched = await agentCommand(['api', 'fetch', 'x509', '-write', out])
      if (fetched.status !== 0) return []
      // Written as svid.N.pem (chain), svid.N.key, bundle.N.pem, in the order the agent sent them.
      return readdirSync(out).filter(f => /^svid\.\d+\.pem$/.test(f)).map(file => {
        const n = /\d+/.exec(file)?.[0] ?? ''
        const certPem = readFileSync(join(out, file), 'utf8')
        const leaf = new X509Certificate(certPem)
        return {
          spiffeId: /URI:(spiffe:\/\/[^,\s]+)/.exec(leaf.subjectAltName ?? '')?.[1] ?? '',
          certPem,
          keyPem: readFileSync(join(out, `svid.${n}.key`), 'utf8'),
          bundlePem: readFileSync(join(out, `bundle.${n}.pem`), 'utf8'),
          serial: leaf.serialNumber
        }
      })
    } finally {
      rmSync(out, { recursive: true, force: true })
    }
  }

  return {
    trustDomain,
    dir,
    workloadApi: `unix://${agentSocket}`,
    agentSocket,
    adminSocket,
    serverSocket,
    serverAddress: `${bindAddress}:${port}`,
    nodeId,
    serverBinary,
    agentBinary,
    serverCommand,
    server: serverMust,
    agentCommand,
    bundlePem,
    createEntry: async entry => {
      const args = ['entry', 'create', '-parentID', entry.parentId ?? nodeId, '-spiffeID', entry.spiffeId]
      for (const selector of entry.selectors) args.push('-selector', selector)
      if (entry.x509SvidTtl !== undefined) args.push('-x509SVIDTTL', String(entry.x509SvidTtl))
      for (const td of entry.federatesWith ?? []) args.push('-federatesWith', td)
      if (entry.downstream === true) args.push('-downstream')
      const id = /^Entry ID\s*:\s*(\S+)/m.exec(await serverMust(...args))?.[1]
      if (id === undefined) throw new Error(`spire-server entry create printed no entry ID for ${entry.spiffeId}`)
      return id
    },
    fetchX509,
    waitForSvids: async (ids, ms = 60_000) => await waitFor(`the SPIRE agent to issue ${ids.join(', ')}`, ms, async () => {
      const svids = await fetchX509()
      return ids.every(id => svids.some(svid => svid.spiffeId === id)) ? svids : undefined
    }),
    stopAgent: async () => { await agent.stop() },
    startAgent: async () => { await startAgent() },
    stopServer: async () => { await server.stop() },
    startServer,
    logs
  }
}
