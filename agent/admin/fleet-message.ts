/** The upstream role's admin messages (admin.proto's RegisterDeviceRequest, Device, FleetStatus …) as the loader gives them. */
import type { FleetDevice } from '../fleet'
import { formatSelector } from '../store'
import type { EntryMessage } from './entry-message'

export interface RegisterDeviceMessage {
  spiffe_id: string
  selectors: string[]
  birth_cert_pem: string
  x509_svid_ttl: number
  alias_id: string
}

export interface RegisteredDeviceMessage {
  downstream: EntryMessage
  alias: EntryMessage | null
  agent_id: string
}

export interface DeviceMessage {
  agent_id: string
  attestation_type: string
  selectors: string[]
  x509_svid_serial_number: string
  x509_svid_expires_at: number
  banned: boolean
  can_reattest: boolean
  attested_at: number
  downstream_ids: string[]
}

export interface ListDevicesMessage {
  devices: DeviceMessage[]
  not_attested: EntryMessage[]
}

export interface FleetStatusMessage {
  address: string
  attested_devices: number
  banned_devices: number
  not_attested_devices: number
  attestations_refused: Record<string, number>
  calls_refused: Record<string, number>
}

export function deviceToMessage ({ agent, downstream }: FleetDevice): DeviceMessage {
  return {
    agent_id: agent.spiffeId,
    attestation_type: agent.attestationType,
    selectors: agent.selectors.map(formatSelector),
    x509_svid_serial_number: agent.serialNumber,
    x509_svid_expires_at: agent.expiresAt,
    banned: agent.banned,
    can_reattest: agent.canReattest,
    attested_at: agent.attestedAt,
    downstream_ids: downstream.map(entry => entry.spiffeId)
  }
}
