/**
 * Two trust domains on real network namespaces, one machine ("plant") each, for federation-netns.interop.ts. Each
 * plant runs `chaperone agent run` as its own CA (no upstream) serving its bundle endpoint on :8443, a transparent
 * sidecar (from a config file that expects the other plant's app at its address) and an unchanged app reporting the
 * X-Forwarded-Client-Cert it gets. Built on the fleet tests' stand (topology, processes, curl as the app, teardown);
 * a plant is a `Device` there, so the fleet checks (appToApp) run between plants as they do between devices.
 * Also: a Web PKI made with the openssl CLI, and probes of what the agents and sidecars hold. Not a test itself.
 */
import type { Test } from 'tap'
import type { StdioOptions } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { connect } from 'node:tls'
import type { RelationshipMessage } from '../../agent/admin/client'
import { decodePem } from '../../spiffe/pem'
import { CLI_BIN, runCli } from '../helpers/cli'
import type { Run } from '../helpers/cli'
import { must, waitFor } from '../helpers/command'
import type { RunAs, Topology } from '../helpers/netns'
import { APP_UID, NODE_APP, NetnsProcess, REPORTER, sleep } from './fleet-netns-stand'
import type { Device, FleetNetnsStand } from './fleet-netns-stand'

/** Where each plant's agent serves its bundle endpoint; spared by the sidecar's inbound redirect. */
export const ENDPOINT_PORT = 8443
export interface Plant extends Device {
  readonly td: string
  /** This plant's bundle endpoint, as the other plant dials it. */
  readonly endpointUrl: string
  /** `chaperone ARGS --admin-socket <this plant's>`, from the root namespace (the socket is a file). */
  readonly cli: (args: string[]) => Promise<Run>
}

export interface PlantOptions {
  readonly td: string
  /** agent.yaml's lines after the trust domain, directories and sockets: ca, svid, federation. */
  readonly config: readonly string[]
  /** Added to the agent's environment (NODE_EXTRA_CA_CERTS: how an operator adds a CA to Node's store). */
  readonly env?: NodeJS.ProcessEnv
}

/** The topology, with `env` added to what its processes get: NetnsProcess passes no environment of its own. */
function withEnv (topology: Topology, env: NodeJS.ProcessEnv): Topology {
  const spawn = (host: string, cmd: string, args: readonly string[] = [], opts: RunAs & { stdio?: StdioOptions } = {}): unknown =>
    topology.spawn(host, cmd, args, { stdio: 'pipe', ...opts, env: { ...opts.env, ...env } })
  return { ...topology, spawn: spawn as Topology['spawn'] }
}

/** Writes a plant's agent.yaml in the stand's folder and starts its agent in `host`; stopped when `t` ends. */
export async function startPlant (t: Test, stand: FleetNetnsStand, host: string, options: PlantOptions): Promise<Plant> {
  const dir = join(stand.dir, host)
  mkdirSync(dir)
  const socket = join(dir, 'workload.sock')
  const adminSocket = join(dir, 'admin.sock')
  writeFileSync(join(dir, 'agent.yaml'), [`trustDomain: ${options.td}`, `dataDir: ${join(dir, 'data')}`, `socket: ${socket}`,
    `adminSocket: ${adminSocket}`, `serverSocket: ${join(dir, 'server', 'api.sock')}`, ...options.config, ''].join('\n'))
  const agent = new NetnsProcess(withEnv(stand.topology, options.env ?? {}), host, ['agent', 'run', '-c', join(dir, 'agent.yaml'), '--log-level', 'info'], `${host} agent`)
  t.teardown(async () => {
    await agent.stop()
    if (!t.passing()) t.comment(`${agent.label}'s last log lines:\n${agent.stderr.split('\n').slice(-60).join('\n')}`)
  })
  await agent.startUntil('chaperone agent running')
  const id = `spiffe://${options.td}`
  return {
    host,
    serial: host,
    dir,
    socket,
    adminSocket,
    deviceId: id,
    appId: `${id}/app`,
    agentId: `${id}/spire/server`,
    agent,
    td: options.td,
    endpointUrl: `https://${stand.address(host)}:${ENDPOINT_PORT}`,
    cli: async args => await runCli([...args, '--admin-socket', adminSocket])
  }
}

/** `chaperone ARGS` on `plant`; its stdout, or a rejection with its stderr. */
export async function cliOk (plant: Plant, args: string[]): Promise<string> {
  const ran = await plant.cli(args)
  if (ran.status !== 0) throw new Error(`chaperone ${args.join(' ')} on ${plant.host} exited ${String(ran.status)}: ${ran.stderr}`)
  return ran.stdout
}

/**
 * The app's entry (federating with `other`'s trust domain), the namespace's redirect (the bundle endpoint is the
 * agent's, so its port is not redirected), the sidecar (expecting `other`'s app at its address) and the app.
 */
export async function startPlantWorkload (stand: FleetNetnsStand, plant: Plant, other: Plant): Promise<void> {
  await cliOk(plant, ['entry', 'create', '--spiffe-id', plant.appId, '--selector', 'unix:uid:0', '--federates-with', other.deviceId])
  const init = await stand.topology.exec(plant.host, process.execPath, [CLI_BIN, 'proxy', 'init-iptables', '--proxy-uid', '0', '--exclude-inbound-ports', String(ENDPOINT_PORT)])
  if (init.status !== 0) throw new Error(`init-iptables in ${plant.host}: ${init.stderr}`)
  const config = join(plant.dir, 'sidecar.yaml')
  writeFileSync(config, [
    `workloadApi: unix://${plant.socket}`, `spiffeId: ${plant.appId}`, `policy: ${stand.policy}`, 'logLevel: info',
    'transparent:', '  outbound: 15001', '  inbound: 15006', '  httpPorts: [8080]',
    `  services: { "${stand.address(other.host)}:8080": "${other.appId}" }`, ''
  ].join('\n'))
  plant.sidecar = stand.process(plant.host, ['proxy', 'run', '-c', config], `${plant.host} sidecar`)
  await plant.sidecar.startUntil('admin')
  stand.topology.spawn(plant.host, NODE_APP[0], [...NODE_APP.slice(1), '-e', REPORTER], { uid: APP_UID, stdio: 'ignore' })
  // As root, on loopback: neither redirected nor through the sidecar.
  await waitFor(`${plant.host}'s app to answer`, 10_000, async () =>
    (await stand.topology.exec(plant.host, 'curl', ['-sf', '-m', '2', 'http://127.0.0.1:8080/'])).status === 0 ? true : undefined)
}

/** A test Web PKI from the openssl CLI: a CA, and a server certificate for the IP address `address` that it signed. */
export async function webPki (dir: string, address: string): Promise<{ caFile: string, certFile: string, keyFile: string }> {
  mkdirSync(dir)
  const [caKey, caFile, keyFile, csr, certFile, ext] = ['ca.key', 'ca.pem', 'endpoint.key', 'endpoint.csr', 'endpoint.pem', 'endpoint.ext'].map(name => join(dir, name))
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']
  await must('openssl', ['req', '-x509', ...ec, '-keyout', caKey, '-out', caFile, '-days', '1', '-subj', '/O=Plant A/CN=Plant A test Web CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'])
  await must('openssl', ['req', ...ec, '-keyout', keyFile, '-out', csr, '-subj', `/O=Plant A/CN=${address}`])
  writeFileSync(ext, `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:${address}\n`)
  await must('openssl', ['x509', '-req', '-in', csr, '-CA', caFile, '-CAkey', caKey, '-set_serial', '0x5eed01', '-days', '1', '-extfile', ext, '-out', certFile])
  return { caFile, certFile, keyFile }
}

/** `federation show --trust-domain TD --json` on `plant`. */
export async function relationship (plant: Plant, trustDomain: string): Promise<RelationshipMessage> {
  return JSON.parse(await cliOk(plant, ['federation', 'show', '--trust-domain', trustDomain, '--json'])) as RelationshipMessage
}

/** The trust domains whose bundles `plant`'s Workload API gives its app (`chaperone api fetch x509`, as uid 0 like the sidecar). */
export async function federatedOfApp (plant: Plant): Promise<string[]> {
  const fetched = await runCli(['api', 'fetch', 'x509', '--socket', `unix://${plant.socket}`, '--json'])
  if (fetched.status !== 0) throw new Error(`api fetch x509 on ${plant.host}: ${fetched.stderr}`)
  const { svids } = JSON.parse(fetched.stdout) as { svids: Array<{ spiffe_id: string, federated_trust_domains: string[] }> }
  return svids.find(svid => svid.spiffe_id === plant.appId)?.federated_trust_domains ?? []
}

export interface CaShown {
  /** The X.509 authority that signs now, as a certificate from the bundle. */
  readonly active: X509Certificate
  readonly sequence: number
  /**
   * When an authority not in the bundle yet can become active at the earliest: the successor of the newest one
   * (the prepared one, if any) is published at half of that one's life and activated at five sixths of it.
   */
  readonly unpublishedActivatesAt: number
}

/** `plant`'s CA as `chaperone ca show` tells it, with the active authority's certificate from `bundle show`. */
export async function caShown (plant: Plant): Promise<CaShown> {
  const ca = JSON.parse(await cliOk(plant, ['ca', 'show', '--json'])) as {
    bundle_sequence: number
    authorities: Array<{ kind: string, state: string, fingerprint256: string, not_before: string, not_after: string }>
  }
  const x509 = ca.authorities.filter(a => a.kind === 'x509').map(a => ({ ...a, from: Date.parse(a.not_before), until: Date.parse(a.not_after) }))
  const fingerprint = x509.find(a => a.state === 'active')?.fingerprint256
  const active = decodePem(await cliOk(plant, ['bundle', 'show'])).map(block => new X509Certificate(block.der)).find(root => root.fingerprint256 === fingerprint)
  if (active === undefined) throw new Error(`${plant.host}'s active authority ${String(fingerprint)} is not in its bundle`)
  const newest = x509.reduce((latest, a) => a.from > latest.from ? a : latest)
  return { active, sequence: ca.bundle_sequence, unpublishedActivatesAt: newest.from + (newest.until - newest.from) * 5 / 6 }
}

/** The leaf a TLS server presents at address:port (from the root namespace; no client certificate is offered). */
export async function presentedLeaf (address: string, port: number): Promise<X509Certificate> {
  return await new Promise((resolve, reject) => {
    const socket = connect({ host: address, port, rejectUnauthorized: false })
    socket.setTimeout(5000, () => socket.destroy(new Error(`no TLS handshake with ${address}:${port} in 5 s`)))
    socket.on('error', reject)
    socket.once('secureConnect', () => {
      const leaf = socket.getPeerX509Certificate()
      socket.destroy()
      if (leaf === undefined) reject(new Error(`${address}:${port} presented no certificate`))
      else resolve(leaf)
    })
  })
}

/** Calls between the plants' apps (GET, a new connection each), pair after pair, until `until` settles; its value and the tally. */
export async function callsUntil<T> (stand: FleetNetnsStand, pairs: ReadonlyArray<readonly [Plant, Plant]>, until: Promise<T>): Promise<{ value: T, ok: number, failed: string[] }> {
  let done = false
  const settled = until.finally(() => { done = true })
  settled.catch(() => {})
  let ok = 0
  const failed: string[] = []
  while (!done) {
    for (const [from, to] of pairs) {
      const answer = await stand.curl(from.host, `http://${stand.address(to.host)}:8080/during`)
      if (answer.code === '200' && answer.body.includes(`;URI=${from.appId}`)) ok++
      else failed.push(`${from.host}→${to.host} ${new Date().toISOString()}: ${answer.code} ${answer.body} ${answer.stderr.trim()}`)
    }
    await sleep(1000)
  }
  return { value: await settled, ok, failed }
}
