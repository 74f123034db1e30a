/**
 * A real Chaperone agent for an interop test, in a folder every uid may enter, with this process's uid registered,
 * and a way to run a peer as an unregistered uid (the refused caller). Not a test itself.
 */
import type { Test } from 'tap'
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { Agent } from '../../agent/agent'
import { loadAgentConfig } from '../../agent/config'
import type { AgentFlags } from '../../agent/config'
import { run, type CommandOptions } from '../helpers/command'

export const TRUST_DOMAIN = 'plant.example'
/** A uid no entry selects. */
export const STRANGER = 4243

export interface AgentStand {
  readonly dir: string
  readonly socket: string
  readonly agent: Agent
  /** The peer binary copied where another uid may run it (the cache is under root's home). */
  placePeer: (binary: string, name: string) => string
  /** Runs a command; with `asStranger`, as the unregistered uid. stdout and stderr joined. */
  runPeer: (cmd: string, args: string[], opts?: CommandOptions & { asStranger?: boolean }) => Promise<{ status: number | null, stdout: string, out: string }>
}

/** Starts the agent (`flags` over the stand's settings), registers `id` for this process's uid; stopped and removed at the test's end. */
export async function startAgentStand (t: Test, id: string, flags: AgentFlags = {}): Promise<AgentStand> {
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-interop-'))
  chmodSync(dir, 0o755)
  const socket = join(dir, 'workload.sock')
  const agent = await Agent.start(loadAgentConfig(undefined, { trustDomain: TRUST_DOMAIN, dataDir: join(dir, 'data'), socket, adminSocket: join(dir, 'admin.sock'), serverSocket: join(dir, 'server.sock'), ...flags }), pino({ level: 'silent' }))
  t.teardown(async () => {
    await agent.stop()
    rmSync(dir, { recursive: true, force: true })
  })
  agent.store.createEntry({ spiffeId: id, selectors: [`unix:uid:${process.getuid?.() ?? 0}`] })
  return {
    dir,
    socket,
    agent,
    placePeer: (binary, name) => {
      const placed = join(dir, name)
      copyFileSync(binary, placed)
      chmodSync(placed, 0o755)
      return placed
    },
    runPeer: async (cmd, args, opts = {}) => {
      const stranger = opts.asStranger === true ? ['setpriv', `--reuid=${STRANGER}`, `--regid=${STRANGER}`, '--clear-groups'] : []
      const [command, ...rest] = [...stranger, cmd, ...args]
      const result = await run(command, rest, { timeoutMs: 30_000, ...opts })
      return { status: result.status, stdout: result.stdout, out: `${result.stdout}${result.stderr}` }
    }
  }
}
