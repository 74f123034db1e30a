/**
 * The child processes of the proxy benchmark: every one is registered with a `Processes` set as soon as it is
 * spawned, so one `stopAll()` in a `finally` (or on SIGINT) ends all of them, whatever step failed.
 */
import { execFile, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { connect, createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { promisify } from 'node:util'

const run = promisify(execFile)

export interface Started { readonly child: ChildProcess, readonly pid: number, readonly stdout: () => string, readonly stderr: () => string }

export class Processes {
  private readonly children: Array<{ name: string, child: ChildProcess, stderr: () => string }> = []

  /**
   * Spawns `command` (with `env` added to this process's environment) and keeps its stdout/stderr, so a failure can
   * say why; `pid` is for reading its /proc entries.
   */
  start (name: string, command: string, args: string[], env: NodeJS.ProcessEnv = {}): Started {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } })
    if (child.pid === undefined) throw new Error(`${name}: cannot run ${command}`)
    let out = ''
    let err = ''
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => { out += chunk })
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { err += chunk })
    child.on('error', (e) => { err += String(e) })
    this.children.push({ name, child, stderr: () => err })
    return { child, pid: child.pid, stdout: () => out, stderr: () => err }
  }

  /** Throws with the process's stderr if it exited early (a bad config), so the run fails loudly, not slowly. */
  assertRunning (): void {
    for (const { name, child, stderr } of this.children) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${name} exited: ${stderr().trim().slice(-2000)}`)
    }
  }

  /** Awaits `load`; if a process has exited meanwhile, fails with its stderr rather than with the load's symptom. */
  async checked<T> (load: Promise<T>): Promise<T> {
    try {
      return await load
    } finally {
      this.assertRunning()
    }
  }

  /** SIGTERM everyone, SIGKILL whoever is still there after two seconds (a draining sidecar waits for its clients). */
  async stopAll (): Promise<void> {
    await Promise.all(this.children.map(async ({ child }) => { await stopChild(child) }))
    this.children.length = 0
  }

  /** Stops one of them the same way (node mode's benchmark restarts its node proxy with other apps). */
  async stop (started: Started): Promise<void> {
    const index = this.children.findIndex(({ child }) => child === started.child)
    if (index >= 0) this.children.splice(index, 1)
    await stopChild(started.child)
  }
}

async function stopChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 2000)
  await exited
  clearTimeout(timer)
}

/** A loopback port free right now; haproxy and nginx need their ports written into their configs before they start. */
export async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  server.close()
  await once(server, 'close')
  return port
}

/** Polls until something accepts on `port` (haproxy and nginx print nothing when ready), checking the children meanwhile. */
export async function waitForPort (port: number, processes: Processes, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    processes.assertRunning()
    const ok = await new Promise<boolean>(resolve => {
      const socket = connect(port, '127.0.0.1')
      socket.once('connect', () => { socket.destroy(); resolve(true) })
      socket.once('error', () => resolve(false))
    })
    if (ok) return
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

/** Waits until `ready(stdout)` holds, failing with the stderr if the process exits first. */
export async function waitForOutput (started: Started, ready: (stdout: string) => boolean, what: string, timeoutMs = 20_000): Promise<string> {
  const deadline = Date.now() + timeoutMs
  while (!ready(started.stdout())) {
    if (started.child.exitCode !== null) throw new Error(`${what} exited: ${started.stderr().trim()}`)
    if (Date.now() > deadline) throw new Error(`${what} not ready after ${timeoutMs} ms: ${started.stderr().trim()}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  return started.stdout()
}

export async function execText (command: string, args: string[]): Promise<string> {
  const { stdout, stderr } = await run(command, args)
  return `${stdout}${stderr}`
}
