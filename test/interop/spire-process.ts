/**
 * One SPIRE program (spire-server or spire-agent) run by an interop test: started, its output kept line by line in a
 * bounded log, stopped with SIGTERM (SIGKILL after 10 s). Not a test itself.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'

/** Lines kept per process: enough to see what went wrong, bounded for long runs. */
export const LOG_LINES = 400

/** A SPIRE process whose output goes, line by line, into a bounded log. */
export class SpireProcess {
  readonly #lines: string[] = []
  #child: ChildProcess | undefined

  constructor (readonly label: string, readonly netns?: string) {}

  start (binary: string, args: string[]): void {
    // `ip netns exec` enters the namespace and execs the binary: the child's pid stays SPIRE's own.
    const child = this.netns === undefined
      ? spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn('ip', ['netns', 'exec', this.netns, binary, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    this.#child = child
    this.#note(`started: ${binary} ${args.join(' ').replace(/-joinToken \S+/, '-joinToken …')}`)
    for (const stream of [child.stdout, child.stderr]) createInterface({ input: stream }).on('line', line => { this.#note(line) })
    child.once('exit', (code, signal) => { this.#note(`exited: ${signal ?? code}`) })
    child.once('error', err => { this.#note(`failed to start: ${err.message}`) })
  }

  /** Still running (no exit seen). */
  get running (): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null
  }

  /** SIGTERM, SIGKILL after 10 s; resolves once it has exited. */
  async stop (): Promise<void> {
    if (this.#child !== undefined && this.running) await stopChild(this.#child)
  }

  tail (): string {
    return this.#lines.map(line => `${this.label}: ${line}`).join('\n')
  }

  #note (line: string): void {
    this.#lines.push(line)
    if (this.#lines.length > LOG_LINES) this.#lines.shift()
  }
}

/** SIGTERM, SIGKILL after 10 s; resolves once `child` (running) has exited. */
export async function stopChild (child: ChildProcess): Promise<void> {
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  const timer = setTimeout(() => { child.kill('SIGKILL') }, 10_000)
  await exited
  clearTimeout(timer)
}
