/**
 * nginx as a real TLS peer for sidecar tests (not a test itself: tap runs only *.test.ts): one foreground,
 * single-process nginx per call, every file it writes (pid, temp folders) inside its own folder, its log on stderr.
 */
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, writeFileSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'

/** A tap `skip` value: why nginx tests cannot run here, or false. */
export const NGINX_MISSING: string | false = spawnSync('nginx', ['-v']).error === undefined
  ? false
  : 'nginx is not on PATH (apt-get install -y nginx; CI installs it)'

export interface RunningNginx {
  readonly port: number
  /** What nginx wrote to stderr so far (its error log). */
  readonly log: () => string
  stop: () => Promise<void>
}

/** A port that was free a moment ago (nginx binds it next; startNginx retries if another process won the race). */
async function freePort (): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  server.close()
  await once(server, 'close')
  return port
}

/** Resolves true once something accepts connections on `port`, false if `exited` settles first or 10 s pass. */
async function accepting (port: number, exited: Promise<unknown>): Promise<boolean> {
  let gone = false
  void exited.then(() => { gone = true })
  const deadline = Date.now() + 10_000
  while (!gone && Date.now() < deadline) {
    const ok = await new Promise<boolean>(resolve => {
      const socket = connect(port, '127.0.0.1', () => { socket.destroy(); resolve(true) })
      socket.on('error', () => { resolve(false) })
    })
    if (ok) return true
    await new Promise(resolve => setTimeout(resolve, 25))
  }
  return false
}

/**
 * Starts nginx in `dir` with `server(port)` as the only server block of its http block, listening on a free
 * loopback port; rejects with nginx's log if it does not come up.
 */
export async function startNginx (dir: string, server: (port: number) => string): Promise<RunningNginx> {
  mkdirSync(dir, { recursive: true })
  let failure = ''
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort()
    const conf = join(dir, 'nginx.conf')
    writeFileSync(conf, [
      'daemon off;',
      'master_process off;',
      `pid ${join(dir, 'nginx.pid')};`,
      'error_log stderr warn;',
      'events { worker_connections 64; }',
      'http {',
      '  access_log off;',
      ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(kind => `  ${kind}_temp_path ${join(dir, kind)};`),
      server(port),
      '}',
      ''
    ].join('\n'))
    const child = spawn('nginx', ['-p', `${dir}/`, '-c', conf, '-e', 'stderr'], { stdio: ['ignore', 'ignore', 'pipe'] })
    let log = ''
    child.stderr.on('data', (chunk: Buffer) => { log += chunk.toString() })
    const exited = once(child, 'exit')
    if (await accepting(port, exited)) {
      return {
        port,
        log: () => log,
        stop: async () => {
          if (child.exitCode === null && child.signalCode === null) {
            child.kill('SIGTERM')
            await exited
          }
        }
      }
    }
    child.kill('SIGKILL')
    failure = log
    if (!/Address already in use/.test(log)) break
  }
  throw new Error(`nginx did not start: ${failure}`)
}
