/**
 * The admin API's calls on the upstream role (`chaperone fleet …`, and the fleet's lines of `chaperone agent status`):
 * register a device, list the devices attested and those registered but not yet, ban and evict one (SPIRE's
 * BanAgent and DeleteAgent on the store's attested agents), and what the fleet's port refused. Each change is
 * logged. Without `fleet:` every call is ERR_FLEET_NOT_CONFIGURED, saying how to enable it.
 */
import type { Logger } from 'pino'
import type { TrustDomain } from '../../spiffe/id'
import { FleetError, fleetDevice, fleetDevices, registerDevice } from '../fleet'
import type { FleetServer } from '../fleet'
import type { RegistrationEntry, RegistrationStore } from '../store'
import type { EntryMessage } from './entry-message'
import { deviceToMessage } from './fleet-message'
import type { DeviceMessage, FleetStatusMessage, ListDevicesMessage, RegisterDeviceMessage, RegisteredDeviceMessage } from './fleet-message'

export interface FleetCallDeps {
  readonly store: RegistrationStore
  readonly trustDomain: TrustDomain
  /** The upstream role's server; undefined without `fleet:`. */
  readonly fleet: () => FleetServer | undefined
  /** An entry as the admin API shows it (with whether this agent serves it). */
  readonly entryMessage: (entry: RegistrationEntry) => EntryMessage
  readonly logger: Logger
}

export interface FleetCalls {
  readonly register: (request: RegisterDeviceMessage) => RegisteredDeviceMessage
  readonly list: () => ListDevicesMessage
  readonly ban: (request: { agent_id: string }) => DeviceMessage
  readonly evict: (request: { agent_id: string }) => DeviceMessage
  readonly status: () => FleetStatusMessage
}

export function fleetCalls ({ store, trustDomain, fleet, entryMessage, logger }: FleetCallDeps): FleetCalls {
  /** The fleet's server, or the error that says how to get one. */
  const server = (): FleetServer => {
    const running = fleet()
    if (running === undefined) {
      throw new FleetError('ERR_FLEET_NOT_CONFIGURED', 'this agent serves no fleet: add `fleet:` with `address` and `manufacturerBundleFile` to its ' +
        'configuration file (chaperone agent run -c FILE) and restart it (README: "A Chaperone agent as the fleet\'s upstream")')
    }
    return running
  }
  const now = (): number => Math.floor(Date.now() / 1000)
  const devices = (): ReturnType<typeof fleetDevices> => fleetDevices(store, now())
  return {
    register: request => {
      server()
      const registered = registerDevice(store, trustDomain, {
        spiffeId: request.spiffe_id, selectors: request.selectors, birthCertPem: request.birth_cert_pem, x509SvidTtl: request.x509_svid_ttl, aliasId: request.alias_id
      })
      logger.info({ spiffeId: registered.downstream.spiffeId, parentId: registered.downstream.parentId, entryId: registered.downstream.id, aliasEntryId: registered.alias?.id },
        'admin: fleet device registered')
      return { downstream: entryMessage(registered.downstream), alias: registered.alias === null ? null : entryMessage(registered.alias), agent_id: registered.agentId ?? '' }
    },
    list: () => {
      server()
      const { attested, notAttested } = devices()
      return { devices: attested.map(deviceToMessage), not_attested: notAttested.map(entryMessage) }
    },
    ban: request => {
      server()
      const banned = store.agents.ban(request.agent_id)
      logger.info({ agentId: banned.spiffeId }, 'admin: fleet device banned')
      return deviceToMessage(fleetDevice(store, banned))
    },
    evict: request => {
      server()
      const evicted = store.agents.evict(request.agent_id)
      logger.info({ agentId: evicted.spiffeId }, 'admin: fleet device evicted')
      return deviceToMessage(fleetDevice(store, evicted))
    },
    status: () => {
      const running = server()
      const { attestationsRefused, callsRefused } = running.status()
      const { attested, notAttested } = devices()
      return {
        address: running.address,
        attested_devices: attested.length,
        banned_devices: attested.filter(device => device.agent.banned).length,
        not_attested_devices: notAttested.length,
        attestations_refused: { ...attestationsRefused },
        calls_refused: { ...callsRefused }
      }
    }
  }
}
