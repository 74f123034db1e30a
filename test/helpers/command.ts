/**
 * Runs the external commands of the deployment and interop suites (docker, compose, apt-get, go, tar, the peers):
 * a whole run with its output, or a command that must succeed. Not a test itself.
 */
import { spawn } from 'node:child_process'

export interface CommandResult { status: number | null, stdout: string, stderr: string }

export interface CommandOptions {
  cwd?: string
  /** Added to this process's environment. */
  env?: NodeJS.ProcessEnv
  input?: string | Buffer
  /** Killed (SIGKILL) after this long; default 120 s. */
  timeoutMs?: number
}

/** Runs `cmd` to completion; resolves whatever its status (null when it was killed at the timeout). */
export async function run (cmd: string, args: readonly string[], opts: CommandOptions = {}): Promise<CommandResult> {
  return await new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: 'pipe' })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s })
    child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s })
    const timer = setTimeout(() => { child.kill('SIGKILL') }, opts.timeoutMs ?? 120_000)
    child.once('error', error => { clearTimeout(timer); reject(new Error(`${cmd}: ${error.message}`)) })
    child.once('close', status => { clearTimeout(timer); resolve({ status, stdout, stderr }) })
    child.stdin.end(opts.input)
  })
}

/** Runs `cmd` and returns its stdout; rejects with the command line, its status and the end of its output. */
export async function must (cmd: string, args: readonly string[], opts: CommandOptions = {}): Promise<string> {
  const result = await run(cmd, args, opts)
  if (result.status === 0) return result.stdout
  const tail = `${result.stdout}\n${result.stderr}`.trim().split('\n').slice(-25).join('\n')
  throw new Error(`${cmd} ${args.join(' ')} ${result.status === null ? 'timed out' : `exited ${result.status}`}:\n${tail}`)
}

/** Polls `probe` until it returns a value (not undefined) or `ms` pass; rejects naming `what`. */
export async function waitFor<T> (what: string, ms: number, probe: () => Promise<T | undefined>, intervalMs = 1000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`gave up after ${ms / 1000} s waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, intervalMs))
  }
}
