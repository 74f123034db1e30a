/**
 * The agents a node-mode stand (node-mode-stand.ts) can take its identities from, behind one shape: where the node
 * proxy reaches the Delegated Identity API, and a way to register workloads by uid and wait until the agent issues
 * them. `chaperoneAgent` runs Chaperone's own agent in this process; `spireAgent` a real SPIRE server and agent
 * (spire-stand.ts) whose admin socket serves the API, entries made with `spire-server entry create`. Not a test itself.
 */
import type { Test } from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { Agent } from '../../agent/agent'
import { loadAgentConfig } from '../../agent/config'
import { DelegatedIdentityClient } from '../../spiffe/delegated-identity-client'
import { waitFor } from '../helpers/command'
import { SPIRE_VERSION } from './peers'
import { startSpireStand } from './spire-stand'

/** A workload the agent should know: its SPIFFE ID, selected by `unix:uid:<uid>`. */
export interface UidEntry { spiffeId: string, uid: number }

export interface DelegatedIdentityProvider {
  /** Who serves the identities, for test names and comments. */
  readonly name: string
  /** The Delegated Identity API, `unix:///…`, as the node proxy's `delegatedIdentityApi`. */
  readonly delegatedIdentityApi: string
  /** Registers the entries; resolves once the agent issues each of them (asked as this process, a delegate). */
  register: (entries: readonly UidEntry[]) => Promise<void>
}

export interface ProviderOptions {
  trustDomain: string
  /** The SPIFFE IDs the agent lets call the Delegated Identity API (authorized delegates). */
  delegates: readonly string[]
}

/** Starts an agent serving the Delegated Identity API; it is stopped when `t` ends. */
export type StartProvider = (t: Test, options: ProviderOptions) => Promise<DelegatedIdentityProvider>

const byUid = (entry: UidEntry): string[] => [`unix:uid:${entry.uid}`]

/** Chaperone's agent in this process, its Delegated Identity API on a socket of its own; entries go straight into its store. */
export const chaperoneAgent: StartProvider = async (t, { trustDomain, delegates }) => {
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-node-agent-'))
  const socket = join(dir, 'delegated.sock')
  const file = join(dir, 'agent.yaml')
  writeFileSync(file, [`trustDomain: ${trustDomain}`, `dataDir: ${join(dir, 'data')}`, `socket: ${join(dir, 'workload.sock')}`, `adminSocket: ${join(dir, 'admin.sock')}`,
    `serverSocket: ${join(dir, 'server.sock')}`, `authorizedDelegates: [${delegates.join(', ')}]`, `delegatedIdentitySocket: ${socket}`, ''].join('\n'))
  const agent = await Agent.start(loadAgentConfig(file), pino({ level: 'silent' }))
  t.teardown(async () => {
    await agent.stop()
    rmSync(dir, { recursive: true, force: true })
  })
  return {
    name: 'Chaperone\'s agent',
    delegatedIdentityApi: `unix://${socket}`,
    register: async entries => {
      for (const entry of entries) agent.store.createEntry({ spiffeId: entry.spiffeId, selectors: byUid(entry) })
    }
  }
}

/**
 * A real SPIRE server and agent (SPIRE_VERSION), the agent's admin socket serving the Delegated Identity API to
 * `delegates` (`authorized_delegates`). Entries are made with `spire-server entry create`, parented by the agent's
 * ID (the alias its join token gave it).
 */
export const spireAgent: StartProvider = async (t, { trustDomain, delegates }) => {
  const spire = await startSpireStand(t, { trustDomain, authorizedDelegates: delegates })
  const delegatedIdentityApi = `unix://${spire.adminSocket ?? ''}`
  return {
    name: `SPIRE agent ${SPIRE_VERSION}`,
    delegatedIdentityApi,
    register: async entries => {
      await Promise.all(entries.map(async entry => await spire.createEntry({ spiffeId: entry.spiffeId, selectors: byUid(entry) })))
      // The agent learns of new entries at its next sync with the server (every 5 s).
      const client = new DelegatedIdentityClient(delegatedIdentityApi)
      try {
        for (const entry of entries) await waitFor(`the SPIRE agent to issue ${entry.spiffeId}`, 60_000, async () => await issued(client, entry))
      } finally {
        client.close()
      }
    }
  }
}

/** Whether the agent gives `entry`'s SVID for its selectors (selector mode) within a second; undefined if not (yet). */
async function issued (client: DelegatedIdentityClient, entry: UidEntry): Promise<true | undefined> {
  return await new Promise(resolve => {
    const cancel = client.subscribeToX509Svids({ selectors: [{ type: 'unix', value: `uid:${entry.uid}` }] }, update => {
      if (!update.svids.some(svid => svid.spiffeId === entry.spiffeId)) return
      clearTimeout(timer)
      cancel()
      resolve(true)
    }, () => {
      // Refused until the agent knows this process (the delegate's own entry): asked again after a pause.
      clearTimeout(timer)
      resolve(undefined)
    })
    const timer = setTimeout(() => { cancel(); resolve(undefined) }, 1000)
  })
}
