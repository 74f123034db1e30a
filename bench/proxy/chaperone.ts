/**
 * The Chaperone side of the proxy benchmark, from the built CLI as a user would run it: an agent process with a
 * client and a server identity for this uid, the SVIDs written through the Workload API (for haproxy, nginx and
 * ghostunnel), and `proxy run` sidecar processes.
 */
import { X509Certificate } from 'node:crypto'
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { AdminClient } from '../../agent/admin/client'
import type { Pki, Svid } from './configs'
import { execText, waitForOutput } from './processes'
import type { Processes } from './processes'

export const CLIENT_ID = 'spiffe://bench.example/client'
export const SERVER_ID = 'spiffe://bench.example/server'
/**
 * A DNS name in the server SVID, besides its ID: ghostunnel's client hop, on certificates from files, checks the
 * server's name as well as its ID (ghostunnel.ts). Every path uses this same SVID; the others do not look at it.
 */
export const SERVER_DNS_NAME = 'server.bench.example'
const CLI = join(__dirname, '..', '..', 'cli', 'main.js')
/** Node's flags as the image gives them (NODE_OPTIONS in the Dockerfile). */
export const NODE_FLAGS = ['--max-semi-space-size=1']

const POLICY = `version: 1
defaultAction: deny
rules:
  - name: bench-client-to-server
    from: [${CLIENT_ID}]
    to:   [${SERVER_ID}]
    action: allow
`

export interface ChaperoneSetup { readonly workloadApi: string, readonly policyFile: string, readonly pki: Pki }

/** Starts the agent, registers both identities for this uid and writes their SVIDs to `dir/svids`. */
export async function startChaperone (dir: string, processes: Processes): Promise<ChaperoneSetup> {
  const socket = join(dir, 'workload.sock')
  const adminSocket = join(dir, 'admin.sock')
  const agent = processes.start('chaperone agent', process.execPath, [CLI, 'agent', 'run', '--trust-domain', 'bench.example',
    '--data-dir', join(dir, 'agent'), '--socket', socket, '--admin-socket', adminSocket, '--log-level', 'warn'])
  // The agent prints its sockets once it serves them (bench/agent-streams.ts waits the same way).
  await waitForOutput(agent, out => out.length > 0, 'the agent')
  const admin = new AdminClient(adminSocket)
  try {
    const selectors = [`unix:uid:${process.getuid?.() ?? 0}`]
    await admin.createEntry({ spiffe_id: CLIENT_ID, parent_id: '', selectors })
    await admin.createEntry({ spiffe_id: SERVER_ID, parent_id: '', selectors, dns_names: [SERVER_DNS_NAME] })
  } finally {
    admin.close()
  }
  const workloadApi = `unix://${socket}`
  const svidDir = join(dir, 'svids')
  await execText(process.execPath, [CLI, 'api', 'fetch', 'x509', '--socket', workloadApi, '--write', svidDir])
  const policyFile = join(dir, 'policy.yaml')
  writeFileSync(policyFile, POLICY)
  return { workloadApi, policyFile, pki: pickSvids(svidDir) }
}

/** The files are numbered in the Workload API's order; which number is which identity is read from the certificates. */
function pickSvids (svidDir: string): Pki {
  const byId = new Map<string, Svid>()
  let bundle = ''
  for (const name of readdirSync(svidDir).filter(n => /^svid\.\d+\.pem$/.test(n))) {
    const cert = join(svidDir, name)
    const key = cert.replace(/\.pem$/, '.key')
    const id = /URI:(spiffe:\/\/[^,\s]+)/.exec(new X509Certificate(readFileSync(cert)).subjectAltName ?? '')?.[1]
    if (id === undefined) continue
    const combined = cert.replace(/\.pem$/, '.combined.pem')
    writeFileSync(combined, readFileSync(cert, 'utf8') + readFileSync(key, 'utf8'), { mode: 0o600 })
    byId.set(id, { cert, key, combined })
    bundle = cert.replace(/svid\.(\d+)\.pem$/, 'bundle.$1.pem')
  }
  const client = byId.get(CLIENT_ID)
  const server = byId.get(SERVER_ID)
  if (client === undefined || server === undefined || bundle === '') throw new Error(`the Workload API gave no SVIDs for both ${CLIENT_ID} and ${SERVER_ID}`)
  return { client, server, bundle }
}

/** A `chaperone proxy run` with one listener; resolves with that listener's bound address once it prints it, and the pid. */
export async function startSidecar (setup: ChaperoneSetup, processes: Processes, id: string, flag: string, spec: string): Promise<{ address: string, pid: number }> {
  const sidecar = processes.start(`sidecar ${flag}`, process.execPath, [...NODE_FLAGS, CLI, 'proxy', 'run', '--workload-api', setup.workloadApi,
    '--spiffe-id', id, '--policy', setup.policyFile, '--admin', '127.0.0.1:0', '--log-level', 'warn', flag, spec])
  // It prints "  <listener>  <host:port>" lines, the admin line last.
  const out = await waitForOutput(sidecar, text => /^ {2}admin +\S+$/m.test(text), `the sidecar ${flag}`)
  const address = [...out.matchAll(/^ {2}(\S+) +(\S+:\d+)$/gm)].find(m => m[1] !== 'admin')?.[2]
  if (address === undefined) throw new Error(`the sidecar ${flag} printed no listener address:\n${out}`)
  return { address, pid: sidecar.pid }
}
