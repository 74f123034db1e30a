/**
 * The benchmark's paths, started on loopback: a one-worker nginx backend (a short body at `/`, 1 MiB at
 * BODY_PATH), reached directly and through two-hop Chaperone sidecar pairs (TCP, HTTP), haproxy pairs (tcp and
 * http mode), a ghostunnel pair (TCP; when its binary is there), a bare Node.js TLS pipe (TCP: Node's floor,
 * node-tls-pipe.ts) and an nginx pair, all with the same SVIDs from
 * our agent.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { CLIENT_ID, SERVER_ID, startChaperone, startSidecar } from './chaperone'
import { bodyFile, haproxyClientHop, haproxyServerHop, nginxBackend, nginxClientHop, nginxServerHop } from './configs'
import type { Pki } from './configs'
import type { PathInfo } from './figures'
import { startGhostunnelPair } from './ghostunnel'
import { startNodeTlsPair } from './node-tls-pipe'
import { freePort, waitForPort } from './processes'
import type { Processes } from './processes'

/** A proxy hop: where it listens, and its process (the root of its tree: nginx's master). */
export interface Hop { readonly port: number, readonly pid: number }

export interface Path extends PathInfo {
  /** Where the load goes: the client hop, or the backend itself. */
  readonly url: string
  /** Client hop then server hop; none when direct. */
  readonly hops: readonly Hop[]
  /** The listening ports along the path, the client-facing one first, the backend last. */
  readonly ports: readonly number[]
}

const BODY_BYTES = 2 ** 20

/** Starts a two-hop proxy pair from two config files; the client hop listens on `hops[0].port`. */
async function startPair (dir: string, processes: Processes, name: string, configs: (listen: number, next: number) => [string, string]): Promise<Hop[]> {
  const ports = [await freePort(), await freePort()]
  const hops: Hop[] = []
  for (const [i, config] of configs(ports[0], ports[1]).entries()) {
    const hop = `${name} ${i === 0 ? 'client' : 'server'} hop`
    const file = join(dir, `${name}-${i}.conf`)
    writeFileSync(file, config)
    const started = name.startsWith('haproxy')
      ? processes.start(hop, 'haproxy', ['-db', '-f', file])
      : processes.start(hop, 'nginx', ['-p', dir, '-e', join(dir, `${name}-${i}.startup.err`), '-c', file])
    hops.push({ port: ports[i], pid: started.pid })
  }
  for (const port of [...ports].reverse()) await waitForPort(port, processes)
  return hops
}

async function startBackend (dir: string, processes: Processes, holderPort: number): Promise<number> {
  const port = await freePort()
  mkdirSync(dirname(bodyFile(dir)), { recursive: true })
  writeFileSync(bodyFile(dir), randomBytes(BODY_BYTES))
  writeFileSync(join(dir, 'backend.conf'), nginxBackend(dir, port, holderPort))
  processes.start('nginx backend', 'nginx', ['-p', dir, '-e', join(dir, 'backend.startup.err'), '-c', join(dir, 'backend.conf')])
  await waitForPort(port, processes)
  return port
}

/**
 * `holderPort`: where the backend passes the connection audit's requests on to; `ghostunnel`: its binary, or
 * undefined to leave its path out.
 */
export async function startPaths (dir: string, processes: Processes, holderPort: number, ghostunnel: string | undefined): Promise<Path[]> {
  const backend = await startBackend(dir, processes, holderPort)
  const chaperone = await startChaperone(dir, processes)
  const pki: Pki = chaperone.pki
  const sidecarPair = async (http: boolean): Promise<Hop[]> => {
    const inbound = await startSidecar(chaperone, processes, SERVER_ID, http ? '--inbound-http' : '--inbound', `127.0.0.1:0=127.0.0.1:${backend}`)
    const outbound = await startSidecar(chaperone, processes, CLIENT_ID, http ? '--outbound-http' : '--outbound', `127.0.0.1:0=${inbound.address}@${SERVER_ID}`)
    const port = (address: string): number => Number(address.slice(address.lastIndexOf(':') + 1))
    return [{ port: port(outbound.address), pid: outbound.pid }, { port: port(inbound.address), pid: inbound.pid }]
  }
  const haproxy = async (mode: 'tcp' | 'http'): Promise<Hop[]> =>
    await startPair(dir, processes, `haproxy-${mode}`, (l, n) => [haproxyClientHop(mode, l, n, pki), haproxyServerHop(mode, n, backend, pki)])
  const path = (info: PathInfo, hops: Hop[]): Path => {
    const ports = [...hops.map(hop => hop.port), backend]
    return { ...info, hops, ports, url: `http://127.0.0.1:${ports[0]}/` }
  }
  return [
    path({ name: 'direct to nginx', proxy: 'direct', mode: undefined }, []),
    path({ name: 'Chaperone sidecars, TCP', proxy: 'Chaperone', mode: 'tcp' }, await sidecarPair(false)),
    path({ name: 'haproxy, tcp mode', proxy: 'haproxy', mode: 'tcp' }, await haproxy('tcp')),
    ...ghostunnel === undefined ? [] : [path({ name: 'ghostunnel, TCP', proxy: 'ghostunnel', mode: 'tcp' }, await startGhostunnelPair(ghostunnel, processes, pki, backend))],
    path({ name: 'bare Node.js TLS pipe, TCP', proxy: 'Node.js', mode: 'tcp' }, await startNodeTlsPair(processes, pki, backend)),
    path({ name: 'Chaperone sidecars, HTTP', proxy: 'Chaperone', mode: 'http' }, await sidecarPair(true)),
    path({ name: 'haproxy, http mode', proxy: 'haproxy', mode: 'http' }, await haproxy('http')),
    path({ name: 'nginx, http', proxy: 'nginx', mode: 'http' },
      await startPair(dir, processes, 'nginx', (l, n) => [nginxClientHop(dir, l, n, pki), nginxServerHop(dir, n, backend, pki)]))
  ]
}
