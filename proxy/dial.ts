/**
 * How the proxy opens its TCP connections — to a peer's proxy, and to the app. A sidecar shares its app's network
 * namespace and simply connects; node mode serves many apps from one process and opens each app's connections
 * inside that app's namespace (node/), so it gives its own dialer. The socket may still be connecting: writes made
 * before it connects wait in its buffer, and a failure arrives as its 'error' event.
 */
import { connect } from 'node:net'
import type { Socket } from 'node:net'
import type { HostPort } from './host-port'

/** `app`: a plain connection to the app's port; `peer`: the TCP beneath mutual TLS to a peer's proxy. */
export type DialPurpose = 'app' | 'peer'

export type Dialer = (target: HostPort, purpose: DialPurpose) => Socket

/** A connection from the proxy's own network namespace. */
export const dialDirect: Dialer = target => connect({ host: target.host, port: target.port, noDelay: true })
