/** `chaperone node run -c <file>` from the build, as the node-mode tests run it. Not a test itself. */
import { spawn } from 'node:child_process'
import type { ChildProcessWithoutNullStreams } from 'node:child_process'
import { once } from 'node:events'
import { CLI_BIN } from './cli'
import { waitFor } from './command'

export interface NodeProxyProcess {
  readonly child: ChildProcessWithoutNullStreams
  /** What it logged so far (JSON lines). */
  stderr: () => string
  /** SIGTERM (it drains) or SIGKILL; resolves once it exited. */
  stop: (signal?: 'SIGTERM' | 'SIGKILL') => Promise<void>
}

/** Starts the node proxy; resolves once it printed that it runs, rejects with its log if it exits first. */
export async function startNodeProxy (configFile: string): Promise<NodeProxyProcess> {
  const child = spawn(process.execPath, [CLI_BIN, 'node', 'run', '-c', configFile])
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s })
  child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s })
  await waitFor('the node proxy to run', 30_000, async () => {
    if (child.exitCode !== null) throw new Error(`the node proxy exited ${child.exitCode}: ${stderr.slice(-3000)}`)
    return stdout.includes('node proxy running') ? true : undefined
  }, 100)
  return {
    child,
    stderr: () => stderr,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = once(child, 'exit')
      child.kill(signal)
      await exited
    }
  }
}
