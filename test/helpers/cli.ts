/** Runs the built `chaperone` bin as a user would (test/helpers/ holds no tests: tap runs only *.test.ts). */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'

export const CLI_BIN = join(__dirname, '..', '..', 'dist', 'cli', 'main.js')
/** A tap `skip` value: the CLI tests need the build (npm test builds before tap runs). */
export const CLI_SKIP: string | false = existsSync(CLI_BIN) ? false : 'not built: run `npm run build` (npm test does)'

export interface Run { status: number | null, stdout: string, stderr: string }

/** Runs the CLI asynchronously, so a server living in the test's own process keeps answering meanwhile. */
export async function runCli (args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return await runProcess(process.execPath, [CLI_BIN, ...args], env)
}

/** Runs any program asynchronously (curl, openssl, nginx …) and collects its output. */
export async function runProcess (command: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const child = spawn(command, args, { env: { ...process.env, ...env } })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const status = await new Promise<number | null>(resolve => child.on('close', resolve))
  return { status, stdout, stderr }
}
