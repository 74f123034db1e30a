/** What every listener of a sidecar shares: its identity, the policy in force, metrics, logs and open connections. */
import type { Logger } from 'pino'
import type { PolicyWatcher } from '../policy/watch'
import type { SidecarConfig } from './config'
import type { ConnectionTracker } from './tracker'
import type { RateLimitedLog } from '../log/limited-log'
import type { SidecarIdentity } from './identity'
import type { SidecarMetrics } from './metrics'
import type { PeerChains } from './steps/peer-chains'
import type { Dialer } from './dial'
import type { HostPort } from './host-port'
import type { SameDeviceApp } from './listeners/same-device'

export interface SidecarServices {
  readonly config: SidecarConfig
  readonly identity: SidecarIdentity
  readonly policy: PolicyWatcher
  readonly metrics: SidecarMetrics
  readonly tracker: ConnectionTracker
  readonly logger: Logger
  /** Denials and handshake failures: logged always, at most once per peer per interval. */
  readonly limitedLog: RateLimitedLog
  /** Chains verified in full handshakes, to verify resumed sessions again in full. */
  readonly peerChains: PeerChains
  /** Opens the connections to peers and to the app (dialDirect in a sidecar). */
  readonly dial: Dialer
  /**
   * Node mode: the tunnel port of the node proxy serving the app at `destination`, to connect to instead (the
   * port called goes in the tunnel header); undefined to connect to the destination itself, as a sidecar does.
   */
  readonly tunnelTo?: (destination: HostPort) => number | undefined
  /**
   * Node mode: the app this same process serves at `destination`, to hand the connection to inside the process
   * (listeners/same-device.ts); undefined to connect out.
   */
  readonly sameDevice?: (destination: HostPort) => SameDeviceApp | undefined
}
