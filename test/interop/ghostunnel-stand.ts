/**
 * One ghostunnel process (server or client mode) on SVIDs from a Workload API, started and stopped for an interop
 * test or a benchmark: ports picked, run as another uid or in a network namespace through a `Launch`, ready once it
 * says it listens, its log kept, its `/_status` readable. Not a test itself.
 */
import { spawn } from 'node:child_process'
import type { ChildProcessWithoutNullStreams } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { createInterface } from 'node:readline'
import { SETPRIV } from '../helpers/netns-tools'

/** Starts a command line (argv[0] is the program) and hands back the child, stdio piped. */
export type Launch = (argv: string[]) => ChildProcessWithoutNullStreams

export interface GhostunnelOptions {
  mode: 'server' | 'client'
  /** The host to listen on; the port is picked. Client mode: ghostunnel insists on loopback. */
  listenHost: string
  /** Server mode: the plain app (ghostunnel insists on loopback); client mode: the TLS server, `host:port`. */
  target: string
  /** The peers' SPIFFE IDs ghostunnel accepts: `--allow-uri` in server mode, `--verify-uri` in client mode. */
  peers: string[]
  /** The Workload API, `unix:///…`. */
  workloadApi: string
  /** Where `/_status` listens, plain HTTP; default `listenHost` (a client's loopback is not reachable from outside its namespace). */
  statusHost?: string
  /** Default: a child of this process, as this uid. */
  launch?: Launch
  /** Default 30 s: the first SVID must come from the Workload API before ghostunnel listens. */
  readyTimeoutMs?: number
}

export interface Ghostunnel {
  /** `host:port` it listens on. */
  readonly address: string
  readonly port: number
  /** Its log lines so far. */
  readonly lines: readonly string[]
  /** GET /_status. In client mode that makes a TLS connection to the target: its health check. */
  status: () => Promise<GhostunnelStatus>
  /** SIGTERM, SIGKILL if it has not exited 2 s later; idempotent. */
  stop: () => Promise<void>
}

/** The fields of ghostunnel's /_status answer that tests read. */
export interface GhostunnelStatus { ok: boolean, status: string, message: string, backend_ok: boolean, backend_error?: string }

/** Runs the command as `uid` (gid the same, no supplementary groups), a child of this process. */
export function asUid (uid: number): Launch {
  if (SETPRIV === undefined) throw new Error('setpriv is not installed (util-linux)')
  return argv => spawn(SETPRIV as string, [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--', ...argv])
}

/**
 * Hands out loopback ports nothing listens on now, never one it handed out before. ghostunnel binds with
 * SO_REUSEPORT, so two of them of one uid given the same port would both listen and share its connections: every
 * ghostunnel of a test takes its ports from that test's one picker.
 */
export class PortPicker {
  readonly #picked = new Set<number>()

  async next (): Promise<number> {
    for (;;) {
      const server = createServer().listen(0, '127.0.0.1')
      await once(server, 'listening')
      const { port } = server.address() as AddressInfo
      server.close()
      if (!this.#picked.has(port)) {
        this.#picked.add(port)
        return port
      }
    }
  }
}

/**
 * Starts ghostunnel and resolves once it listens. Readiness is its log line "listening for connections on …", not a
 * poll: a connection to its port, or a GET of /_status, makes it connect to its target, which would count as a
 * call at the app or the sidecar behind it. A port taken meanwhile by someone else is picked again (three tries).
 */
export async function startGhostunnel (binary: string, ports: PortPicker, options: GhostunnelOptions): Promise<Ghostunnel> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(binary, options, await ports.next(), await ports.next())
    } catch (err) {
      if (attempt === 3 || !/address already in use/.test((err as Error).message)) throw err
    }
  }
}

async function startOnce (binary: string, options: GhostunnelOptions, port: number, statusPort: number): Promise<Ghostunnel> {
  const address = `${options.listenHost}:${port}`
  const statusAddress = `${options.statusHost ?? options.listenHost}:${statusPort}`
  const argv = [
    binary, options.mode,
    '--listen', address,
    '--target', options.target,
    ...options.peers.flatMap(id => [options.mode === 'server' ? '--allow-uri' : '--verify-uri', id]),
    '--use-workload-api-addr', options.workloadApi,
    // http:// or it serves /_status over TLS with its SVID
    '--status', `http://${statusAddress}`,
    '--shutdown-timeout', '1s'
  ]
  const child = (options.launch ?? (argv => spawn(argv[0], argv.slice(1))))(argv)
  const lines: string[] = []
  let failed = false
  child.on('error', err => {
    failed = true
    lines.push(`cannot run ${binary}: ${err.message}`)
  })
  // It logs to stdout (flag and usage errors go to stderr).
  for (const stream of [child.stdout, child.stderr]) createInterface({ input: stream }).on('line', line => { lines.push(line) })
  const exited = new Promise(resolve => child.once('exit', resolve))
  const stop = async (): Promise<void> => {
    if (failed || child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGTERM')
    const timer = setTimeout(() => { child.kill('SIGKILL') }, 2000)
    await exited
    clearTimeout(timer)
  }
  const deadline = Date.now() + (options.readyTimeoutMs ?? 30_000)
  while (!lines.some(line => line.includes('listening for connections on'))) {
    if (failed || child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      await stop()
      throw new Error(`ghostunnel ${options.mode} on ${address} did not get ready:\n${lines.join('\n')}`)
    }
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return {
    address,
    port,
    lines,
    status: async () => await (await fetch(`http://${statusAddress}/_status`)).json() as GhostunnelStatus,
    stop
  }
}
