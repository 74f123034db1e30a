/** `chaperone agent run`: the agent process, configured by a YAML file and flags. */
import type { Command } from 'commander'
import type { AgentConfig, AgentFlags } from '../agent/config'
import type { Agent } from '../agent/agent'
import type { WorkloadApiStatusMessage } from '../agent/admin/workload-api-message'
import type { AdminClient, FleetStatusMessage } from '../agent/admin/client'
import { print, withAdmin, withAdminOptions } from './admin-options'
import type { AdminOptions } from './admin-options'

function describeRunning (config: AgentConfig, agent: Agent): string {
  const mode = config.adminSocketGroup === undefined ? '0600, owner only' : `0660, group ${config.adminSocketGroup}`
  const serverGroup = config.serverSocketGroup === undefined ? 'owner and the agent\'s group' : `group ${config.serverSocketGroup}`
  const serverMode = config.serverSocketAdminWorkloads ? `0777: ${serverGroup}, and workloads with an admin entry` : `0770, ${serverGroup}`
  return [
    `chaperone agent running for trust domain ${config.trustDomain.name}`,
    `  admin API     : ${config.adminSocket} (${mode})`,
    `  SPIRE API     : ${config.serverSocket} (${serverMode}; spire-server -socketPath)`,
    `  Workload API  : ${config.socket} (any local process; identified by the kernel)`,
    `  Delegated API : ${describeDelegatedApi(config)}`,
    `  agent ID      : ${agent.store.agentId} (the parent ID of entries this agent serves)`,
    `  data directory: ${config.dataDir}`,
    ''
  ].join('\n')
}

/** Where the Delegated Identity API is served, and to how many delegates. */
function describeDelegatedApi (config: AgentConfig): string {
  const delegates = config.authorizedDelegates.length === 0 ? 'no authorized delegates: every call refused' : `${config.authorizedDelegates.length} authorized delegate(s)`
  if (config.delegatedIdentitySocket === undefined) return `the admin socket (${delegates})`
  const mode = config.delegatedIdentitySocketGroup === undefined ? '0666, callers attested' : `0660, group ${config.delegatedIdentitySocketGroup}`
  return `${config.delegatedIdentitySocket} (${mode}) and the admin socket (${delegates})`
}

/** "reason count, …" by reason, or "none". */
function describeCounts (counts: Record<string, number>): string {
  const sorted = Object.entries(counts).sort(([a], [b]) => a.localeCompare(b))
  return sorted.length === 0 ? 'none' : sorted.map(([reason, count]) => `${reason} ${count}`).join(', ')
}

function describeWorkloadApi (status: WorkloadApiStatusMessage): string {
  return [
    `Workload API connections : ${status.open_connections} open`,
    `Limits                   : ${status.max_connections_per_uid} per uid, ${status.reserved_descriptors} descriptors reserved for identified uids (of ${status.open_files_limit} open files), closed after ${status.idle_timeout_ms / 1000} s without a call`,
    `Refused since start      : ${describeCounts(status.refused)}`,
    ''
  ].join('\n')
}

function describeFleet (fleet: FleetStatusMessage): string {
  const banned = fleet.banned_devices === 0 ? '' : ` (${fleet.banned_devices} banned)`
  return [
    `Fleet port               : ${fleet.address}`,
    `Fleet devices            : ${fleet.attested_devices} attested${banned}, ${fleet.not_attested_devices} registered not attested yet`,
    `Attestations refused     : ${describeCounts(fleet.attestations_refused)}`,
    `Fleet calls refused      : ${describeCounts(fleet.calls_refused)}`,
    ''
  ].join('\n')
}

/** The fleet's status, or undefined from an agent without `fleet:`. */
async function fleetStatusOf (client: AdminClient): Promise<FleetStatusMessage | undefined> {
  return await client.getFleetStatus().catch((err: unknown) => {
    if ((err as { code?: string }).code === 'ERR_FLEET_NOT_CONFIGURED') return undefined
    throw err
  })
}

export function addAgentCommand (program: Command): void {
  const agent = program.command('agent').description('the bundled SPIFFE agent')
  withAdminOptions(agent.command('status').description('the Workload API\'s connections and what its limits refused since the agent started; with fleet:, the fleet\'s devices and refusals'))
    .action(async (options: AdminOptions) => {
      const [status, fleet] = await withAdmin(options, async client => await Promise.all([client.getWorkloadApiStatus(), fleetStatusOf(client)]))
      print(options, fleet === undefined ? status : { ...status, fleet }, () => describeWorkloadApi(status) + (fleet === undefined ? '' : describeFleet(fleet)))
    })
  agent.command('run')
    .description('run the agent: CA, registration store, Workload API, admin API and SPIRE\'s server API (logs JSON lines to stderr)')
    .option('-c, --config <file>', 'YAML (or JSON) configuration file; flags override it')
    .option('--trust-domain <name>', 'the trust domain, e.g. plant.example')
    .option('--data-dir <dir>', 'registration store, CA keys and state')
    .option('--socket <path>', 'the Workload API socket')
    .option('--admin-socket <path>', 'the admin API socket')
    .option('--admin-socket-group <group>', 'let this group use the admin socket (mode 0660)')
    .option('--server-socket <path>', 'the SPIRE-compatible server API socket (spire-server -socketPath)')
    .option('--server-socket-group <group>', 'give the server API socket to this group (mode 0770)')
    .option('--server-socket-admin-workloads', 'let workloads attested to an entry with admin: true call the server API socket too (it opens to every local user; each call is authorized)')
    .option('--docker-socket <path>', 'the Docker Engine API socket, for docker:* selectors')
    .option('--log-level <level>', 'fatal, error, warn, info, debug or trace')
    .option('--metrics <host:port>', 'serve Prometheus metrics at http://host:port/metrics (CA, upstream, fleet)')
    .action(async (options: AgentFlags & { config?: string }) => {
      const { config: file, ...flags } = options
      const [{ loadAgentConfig }, { Agent }, { pino }] = await Promise.all([import('../agent/config.js'), import('../agent/agent.js'), import('pino')])
      const config = loadAgentConfig(file, flags)
      const logger = pino({ level: config.logLevel }, pino.destination(2))
      const agent = await Agent.start(config, logger)
      process.stdout.write(describeRunning(config, agent))
      await new Promise<void>(resolve => {
        const stop = (signal: string): void => {
          logger.info({ signal }, 'stopping')
          resolve()
        }
        process.once('SIGINT', stop)
        process.once('SIGTERM', stop)
      })
      await agent.stop()
    })
}
