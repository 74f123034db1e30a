/**
 * Side-by-side proxy benchmark on loopback: wrk → {direct, Chaperone TCP, Chaperone HTTP, haproxy TCP, haproxy HTTP,
 * nginx} → a one-worker nginx backend. Writes bench/results.md and returns the table's lines.
 * `npm run build --silent && node dist/bench/proxy/run.js`; also run by `npm run bench` (skipped without the tools).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CLIENT_ID, SERVER_ID, startChaperone, startSidecar } from './chaperone'
import type { Pki } from './configs'
import { haproxyClientHop, haproxyServerHop, nginxBackend, nginxClientHop, nginxServerHop } from './configs'
import { Processes, execText, freePort, haveTools, waitForPort } from './processes'
import { renderTable } from './report'
import type { PathResult } from './report'
import { runWrk } from './wrk'
import type { WrkOptions, WrkResult } from './wrk'

const LOAD: WrkOptions = { threads: 1, connections: 50, seconds: 5 }
const ROUNDS = 3
const RESULTS_FILE = join(__dirname, '..', '..', '..', 'bench', 'results.md')

interface Path { readonly name: string, readonly mode: PathResult['mode'], readonly reference: boolean, readonly url: string }

/** Starts a two-hop proxy pair from two config files; returns the client hop's port, where wrk connects. */
async function startPair (dir: string, processes: Processes, name: string, configs: (listen: number, next: number) => [string, string]): Promise<number> {
  const [listen, next] = [await freePort(), await freePort()]
  const [client, server] = configs(listen, next)
  const files = [join(dir, `${name}-client.conf`), join(dir, `${name}-server.conf`)]
  writeFileSync(files[0], client)
  writeFileSync(files[1], server)
  for (const [i, file] of files.entries()) {
    const hop = `${name} ${i === 0 ? 'client' : 'server'} hop`
    if (name.startsWith('haproxy')) processes.start(hop, 'haproxy', ['-db', '-f', file])
    else processes.start(hop, 'nginx', ['-p', dir, '-e', join(dir, `${name}-${i}.startup.err`), '-c', file])
  }
  await waitForPort(next, processes)
  await waitForPort(listen, processes)
  return listen
}

async function startEverything (dir: string, processes: Processes): Promise<Path[]> {
  const backend = await freePort()
  writeFileSync(join(dir, 'backend.conf'), nginxBackend(dir, backend))
  processes.start('nginx backend', 'nginx', ['-p', dir, '-e', join(dir, 'backend.startup.err'), '-c', join(dir, 'backend.conf')])
  await waitForPort(backend, processes)
  const chaperone = await startChaperone(dir, processes)
  const pki: Pki = chaperone.pki
  const sidecarPair = async (http: boolean): Promise<string> => {
    const inbound = await startSidecar(chaperone, processes, SERVER_ID, http ? '--inbound-http' : '--inbound', `127.0.0.1:0=127.0.0.1:${backend}`)
    return await startSidecar(chaperone, processes, CLIENT_ID, http ? '--outbound-http' : '--outbound', `127.0.0.1:0=${inbound}@${SERVER_ID}`)
  }
  const url = (address: string | number): string => `http://${typeof address === 'number' ? `127.0.0.1:${address}` : address}/`
  return [
    { name: 'direct to nginx', mode: undefined, reference: false, url: url(backend) },
    { name: 'Chaperone sidecars, TCP', mode: 'tcp', reference: false, url: url(await sidecarPair(false)) },
    { name: 'haproxy, tcp mode', mode: 'tcp', reference: true, url: url(await startPair(dir, processes, 'haproxy-tcp', (l, n) => [haproxyClientHop('tcp', l, n, pki), haproxyServerHop('tcp', n, backend, pki)])) },
    { name: 'Chaperone sidecars, HTTP', mode: 'http', reference: false, url: url(await sidecarPair(true)) },
    { name: 'haproxy, http mode', mode: 'http', reference: true, url: url(await startPair(dir, processes, 'haproxy-http', (l, n) => [haproxyClientHop('http', l, n, pki), haproxyServerHop('http', n, backend, pki)])) },
    { name: 'nginx, http', mode: 'http', reference: false, url: url(await startPair(dir, processes, 'nginx', (l, n) => [nginxClientHop(dir, l, n, pki), nginxServerHop(dir, n, backend, pki)])) }
  ]
}

/** wrk prints its version only with its usage and exits 1; take the first line whichever way it comes. */
async function versionOf (command: string, args: string[]): Promise<string> {
  let text: string
  try {
    text = await execText(command, args)
  } catch (err) {
    text = `${(err as { stdout?: string }).stdout ?? ''}${(err as { stderr?: string }).stderr ?? ''}`
  }
  return /(\d+\.\d+[.\w-]*)/.exec(text)?.[1] ?? 'unknown'
}

export async function benchProxies (): Promise<string[]> {
  if (!await haveTools([['wrk', ['--version']], ['haproxy', ['-v']], ['nginx', ['-v']]])) {
    return ['proxy benchmark skipped: install wrk haproxy nginx (apt-get install -y wrk haproxy nginx-light)']
  }
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-proxy-bench-'))
  const processes = new Processes()
  const cleanUp = async (): Promise<void> => {
    await processes.stopAll()
    rmSync(dir, { recursive: true, force: true })
  }
  // Ctrl-C mid-run must not leave haproxy, nginx or sidecars behind.
  const onSignal = (): void => { void cleanUp().finally(() => process.exit(130)) }
  process.once('SIGINT', onSignal)
  try {
    const paths = await startEverything(dir, processes)
    const rounds = new Map<Path, WrkResult[]>(paths.map(p => [p, []]))
    // One short run per path first: TLS sessions, upstream pools and V8's JIT are then warm for the measured rounds.
    for (const path of paths) await runWrk(path.url, { ...LOAD, seconds: 1 })
    // Interleaved, so a slow spell of a shared machine hits every path rather than one.
    for (let round = 0; round < ROUNDS; round++) {
      for (const path of paths) {
        rounds.get(path)?.push(await runWrk(path.url, LOAD))
        processes.assertRunning()
      }
    }
    const versions = {
      node: process.version, openssl: process.versions.openssl, haproxy: await versionOf('haproxy', ['-v']),
      nginx: await versionOf('nginx', ['-v']), wrk: await versionOf('wrk', ['--version'])
    }
    const table = renderTable(paths.map(p => ({ ...p, rounds: rounds.get(p) ?? [] })), { ...LOAD, rounds: ROUNDS }, { versions })
    writeFileSync(RESULTS_FILE, table)
    return [table, `written to ${RESULTS_FILE}`]
  } finally {
    process.removeListener('SIGINT', onSignal)
    await cleanUp()
  }
}

if (require.main === module) {
  benchProxies().then(lines => { for (const line of lines) console.log(line) }, (err: unknown) => {
    console.error(err)
    process.exitCode = 1
  })
}
