/**
 * A Chaperone agent in the device role under a real SPIRE server (x509pop-device.ts's stand): its birth certificate
 * and the server's bundle written as an operator would, its `downstream` entry registered with `spire-server entry
 * create`, the agent started from a config file with `upstream:`, its logs kept, and `spire-agent api` pointed at its
 * Workload API to fetch and validate SVIDs as a workload would. Not a test itself.
 */
import type { Test } from 'tap'
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import pino from 'pino'
import type { BirthCert } from '../../certs-test'
import { Agent } from '../../agent/agent'
import { loadAgentConfig } from '../../agent/config'
import { birthCredential, x509popAgentId } from '../../agent/upstream'
import type { TrustDomain } from '../../spiffe/id'
import { decodePem } from '../../spiffe/pem'
import { must, waitFor } from '../helpers/command'
import type { X509popStand } from './x509pop-device'

export interface DeviceAgent {
  readonly dir: string
  /** The device's Workload API socket. */
  readonly socket: string
  /** The device's downstream entry's SPIFFE ID, `spiffe://<td>/device/<serial>`. */
  readonly deviceId: string
  /** The agent running now (replaced by `restart`). */
  agent: () => Agent
  /** Stops the agent; `start` starts it again on the same data directory. */
  stop: () => Promise<void>
  start: () => Promise<void>
  logs: () => Array<Record<string, unknown>>
  /** `spire-agent api fetch x509` against the device: the first SVID's chain (DER, leaf first) and the bundle (DER). */
  fetchX509: () => Promise<{ chain: Buffer[], bundle: Buffer[] }>
  /** `spire-agent api fetch jwt` against the device: a JWT-SVID for `audience`. */
  fetchJwt: (audience: string) => Promise<string>
  /** `spire-agent api validate jwt` against the device: whether it accepts `token` for `audience`, and what it printed. */
  validateJwt: (token: string, audience: string) => Promise<{ ok: boolean, out: string }>
}

export interface DeviceAgentOptions {
  /** ca.ttl and svid.x509Ttl of the device's agent; 1h and 10m by default. */
  readonly caTtl?: string
  readonly x509Ttl?: string
}

/**
 * Registers the device holding `birth` (its downstream entry, parented on its x509pop agent ID) and starts its agent
 * once SPIRE authorizes the entry to it; the workload entry `workloadId` is registered on the device for this uid.
 */
export async function startDeviceAgent (t: Test, stand: X509popStand, birth: BirthCert, workloadId: string, options: DeviceAgentOptions = {}): Promise<DeviceAgent> {
  const { spire, server } = stand
  const td: TrustDomain = server.trustDomain
  const dir = mkdtempSync(join(spire.dir, `device-${birth.serial}-`))
  chmodSync(dir, 0o755)
  mkdirSync(join(dir, 'birth'), { mode: 0o700 })
  writeFileSync(join(dir, 'birth', 'cert.pem'), birth.chainPem)
  writeFileSync(join(dir, 'birth', 'key.pem'), birth.keyPem, { mode: 0o600 })
  writeFileSync(join(dir, 'fleet-bundle.pem'), await spire.bundlePem())
  const socket = join(dir, 'workload.sock')
  writeFileSync(join(dir, 'agent.yaml'), [
    `trustDomain: ${td.name}`,
    `dataDir: ${join(dir, 'data')}`,
    `socket: ${socket}`,
    `adminSocket: ${join(dir, 'admin.sock')}`,
    `serverSocket: ${join(dir, 'server', 'api.sock')}`,
    `ca: { ttl: ${options.caTtl ?? '1h'} }`,
    `svid: { x509Ttl: ${options.x509Ttl ?? '10m'} }`,
    'upstream:',
    `  address: ${spire.serverAddress}`,
    `  trustBundleFile: ${join(dir, 'fleet-bundle.pem')}`,
    '  x509pop:',
    `    certFile: ${join(dir, 'birth', 'cert.pem')}`,
    `    keyFile: ${join(dir, 'birth', 'key.pem')}`,
    '  timeout: 10s',
    ''
  ].join('\n'))

  const deviceId = `spiffe://${td.name}/device/${birth.serial}`
  const agentId = x509popAgentId(td, birthCredential(birth.chain, birth.key)).toString()
  await spire.createEntry({ parentId: agentId, spiffeId: deviceId, selectors: [`x509pop:subject:cn:${birth.serial}`], downstream: true })

  const lines: string[] = []
  const sink = new Writable({ write (chunk: Buffer, _encoding, done) { lines.push(...chunk.toString().split('\n').filter(l => l !== '')); done() } })
  const logger = pino({ level: 'info' }, sink)
  let agent: Agent | undefined
  const start = async (): Promise<void> => {
    agent = await Agent.start(loadAgentConfig(join(dir, 'agent.yaml')), logger)
  }
  const stop = async (): Promise<void> => {
    await agent?.stop()
    agent = undefined
  }
  // SPIRE reloads its entry cache every 5 s: until then the device is not registered in its eyes.
  await waitFor(`SPIRE to authorize ${deviceId} to ${agentId}`, 60_000, async () => await start().then(() => true, (err: { code?: string }) => {
    if (err.code === 'ERR_DOWNSTREAM_ENTRY_MISSING') return undefined
    throw err
  }))
  t.teardown(async () => {
    await stop()
    if (!t.passing()) t.comment(`device ${birth.serial}'s log:\n${lines.slice(-80).join('\n')}`)
    rmSync(dir, { recursive: true, force: true })
  })
  ;(agent as Agent).store.createEntry({ spiffeId: workloadId, selectors: [`unix:uid:${process.getuid?.() ?? 0}`] })

  const api = async (args: string[]): Promise<string> => await must(spire.agentBinary, ['api', ...args, '-socketPath', socket], { timeoutMs: 30_000 })
  return {
    dir,
    socket,
    deviceId,
    agent: () => {
      if (agent === undefined) throw new Error(`device ${birth.serial}'s agent is stopped`)
      return agent
    },
    stop,
    start,
    logs: () => lines.map(line => JSON.parse(line) as Record<string, unknown>),
    fetchX509: async () => {
      const out = mkdtempSync(join(dir, 'fetch-'))
      try {
        await api(['fetch', 'x509', '-write', out])
        const pem = (file: string): Buffer[] => decodePem(readFileSync(join(out, file), 'utf8')).map(block => block.der)
        if (!readdirSync(out).includes('svid.0.pem')) throw new Error(`spire-agent api fetch x509 wrote no svid.0.pem in ${out}`)
        return { chain: pem('svid.0.pem'), bundle: pem('bundle.0.pem') }
      } finally {
        rmSync(out, { recursive: true, force: true })
      }
    },
    fetchJwt: async audience => {
      const token = /^token\(([^)]+)\):\n\s*(\S+)/m.exec(await api(['fetch', 'jwt', '-audience', audience]))?.[2]
      if (token === undefined) throw new Error('spire-agent api fetch jwt printed no token')
      return token
    },
    validateJwt: async (token, audience) => {
      const result = await must(spire.agentBinary, ['api', 'validate', 'jwt', '-audience', audience, '-svid', token, '-socketPath', socket], { timeoutMs: 30_000 }).then(
        out => ({ ok: true, out }), (err: Error) => ({ ok: false, out: err.message }))
      return result
    }
  }
}
