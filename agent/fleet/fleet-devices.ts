/**
 * The fleet as operators look at it (`chaperone fleet list`, `chaperone agent status`): every device attested to this
 * agent (banned ones too) with the downstream entries authorized to it, and the devices registered that no attested
 * device is authorized to yet: downstream entries meant for other agents (parented on an agent ID or a node alias,
 * not served by this one), unexpired.
 */
import type { AttestedAgent, RegistrationEntry, RegistrationStore } from '../store'

export interface FleetDevice {
  readonly agent: AttestedAgent
  /** The downstream entries authorized to it, by SPIRE's rule (RegistrationStore.entriesAuthorizedTo). */
  readonly downstream: readonly RegistrationEntry[]
}

export interface FleetDevices {
  /** By agent ID. */
  readonly attested: readonly FleetDevice[]
  /** By SPIFFE ID. */
  readonly notAttested: readonly RegistrationEntry[]
}

/** An attested agent with the downstream entries authorized to it. */
export function fleetDevice (store: Pick<RegistrationStore, 'entriesAuthorizedTo'>, agent: AttestedAgent): FleetDevice {
  return { agent, downstream: store.entriesAuthorizedTo(agent.spiffeId, agent.selectors).filter(entry => entry.downstream) }
}

/** One authorized-entries lookup per attested device, then one pass over the entries: cheap for a fleet's size. */
export function fleetDevices (store: Pick<RegistrationStore, 'agents' | 'entriesAuthorizedTo' | 'listEntries' | 'isServed'>, now: number): FleetDevices {
  const attested = store.agents.list().map(agent => fleetDevice(store, agent))
  const reached = new Set(attested.flatMap(device => device.downstream.map(entry => entry.id)))
  const notAttested = store.listEntries().filter(entry =>
    entry.downstream && !reached.has(entry.id) && entry.parentId !== null && (entry.expiresAt === null || entry.expiresAt > now) && !store.isServed(entry))
  return { attested, notAttested }
}
