/** What every listener of a sidecar shares: its identity, the policy in force, metrics, logs and open connections. */
import type { Logger } from 'pino'
import type { PolicyWatcher } from '../policy/watch'
import type { SidecarConfig } from './config'
import type { ConnectionTracker } from './tracker'
import type { RateLimitedLog } from '../log/limited-log'
import type { SidecarIdentity } from './identity'
import type { SidecarMetrics } from './metrics'
import type { PeerChains } from './steps/peer-chains'

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
}
