/**
 * Where an agent serves the Delegated Identity API: its admin socket, a Unix socket only (SPIRE's
 * `admin_socket_path`; the API is never served on the Workload API socket nor over TCP).
 */
import { DelegatedIdentityApiError } from './delegated-identity-api-error'
import { socketTarget } from './workload-endpoint'

/** The environment variable SPIRE's Rust client (crate spire-api) reads the admin socket's address from. */
export const ADMIN_ENDPOINT_SOCKET_ENV = 'SPIRE_ADMIN_ENDPOINT_SOCKET'

/**
 * The grpc-js target for the admin socket: `explicit`, else $SPIRE_ADMIN_ENDPOINT_SOCKET, as `unix:///path`,
 * `unix:/path` or a bare absolute `/path`; throws ERR_DELEGATED_IDENTITY_API_ADDRESS otherwise.
 */
export function delegatedIdentityEndpoint (explicit?: string): string {
  const address = explicit ?? process.env[ADMIN_ENDPOINT_SOCKET_ENV]
  if (address === undefined || address === '') {
    throw new DelegatedIdentityApiError('ERR_DELEGATED_IDENTITY_API_ADDRESS',
      `no address for the agent's admin socket (Delegated Identity API): set ${ADMIN_ENDPOINT_SOCKET_ENV} (e.g. unix:///run/spire/admin.sock) or pass one`)
  }
  return socketTarget(address, why => new DelegatedIdentityApiError('ERR_DELEGATED_IDENTITY_API_ADDRESS',
    `invalid admin socket address ${JSON.stringify(address)}: ${why} (expected unix:///path/to/admin.sock or an absolute path)`), { tcp: false })
}
