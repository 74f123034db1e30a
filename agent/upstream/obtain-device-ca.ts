/**
 * From the agent X509-SVID to the device CA, in SPIRE's order (spire-compat.md §2): the server checked once by a TLS
 * handshake of its own (so an unreachable server and a wrong one are told apart), the entries authorized to the
 * agent, the device's downstream entry among them, that entry's X509-SVID, then NewDownstreamX509CA as that entry.
 */
import type { AgentSvid } from './agent-svid'
import { fetchAuthorizedEntries } from './authorized-entries'
import type { AuthorizedEntry } from './authorized-entries'
import { newDeviceCa } from './device-ca'
import type { DeviceCaOptions } from './device-ca'
import type { DeviceCa } from './device-ca-check'
import { chooseDownstreamEntry } from './downstream-entry'
import { newEntrySvid } from './entry-svid'
import type { EntrySvid } from './entry-svid'
import { checkUpstreamServer } from './server-trust'
import type { UpstreamServer } from './server-trust'
import { DEFAULT_UPSTREAM_TIMEOUT_MS } from './upstream-client'

export interface DeviceEnrolment {
  /** The device's downstream entry on the upstream. */
  readonly entry: AuthorizedEntry
  /** Its X509-SVID, the caller of NewDownstreamX509CA (and of PublishJWTAuthority, later). */
  readonly downstreamSvid: EntrySvid
  readonly ca: DeviceCa
}

/** The device CA for the agent `agent` of `server`; `timeoutMs` bounds each step. A failure is an UpstreamError. */
export async function obtainDeviceCa (server: UpstreamServer, agent: AgentSvid, options: DeviceCaOptions = {}): Promise<DeviceEnrolment> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS
  await checkUpstreamServer(server, timeoutMs)
  const entry = chooseDownstreamEntry(await fetchAuthorizedEntries(server, agent, timeoutMs), agent.id)
  const downstreamSvid = await newEntrySvid(server, agent, entry, timeoutMs)
  const ca = await newDeviceCa(server, downstreamSvid, { ...options, timeoutMs })
  return { entry, downstreamSvid, ca }
}
