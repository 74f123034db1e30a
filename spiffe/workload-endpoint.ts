/**
 * Where the Workload API listens (https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE_Workload_Endpoint.md §4):
 * a `unix:` URI with an absolute path, or `tcp://IP:port` with an IP address (no host names, so no DNS can redirect us).
 */
import { isIP } from 'node:net'
import { WorkloadApiError } from './workload-api-error'

/** The environment variable the standard names for the endpoint address. */
export const ENDPOINT_SOCKET_ENV = 'SPIFFE_ENDPOINT_SOCKET'

function invalid (address: string, why: string): WorkloadApiError {
  return new WorkloadApiError('ERR_WORKLOAD_API_ADDRESS', `invalid Workload API address ${JSON.stringify(address)}: ${why} (expected unix:///path/to/socket or tcp://IP:port)`)
}

/**
 * The grpc-js target for a Workload API address: `explicit`, else $SPIFFE_ENDPOINT_SOCKET. Accepts `unix:///path`,
 * `unix:/path`, a bare absolute `/path`, and `tcp://IP:port`; throws ERR_WORKLOAD_API_ADDRESS otherwise.
 */
export function workloadEndpoint (explicit?: string): string {
  const address = explicit ?? process.env[ENDPOINT_SOCKET_ENV]
  if (address === undefined || address === '') {
    throw new WorkloadApiError('ERR_WORKLOAD_API_ADDRESS', `no Workload API address: set ${ENDPOINT_SOCKET_ENV} (e.g. unix:///run/chaperone/workload.sock) or pass one`)
  }
  return socketTarget(address, why => invalid(address, why), { tcp: true })
}

/**
 * The grpc-js target for a socket address: `unix:///path`, `unix:/path` or a bare absolute `/path`, and with `tcp`
 * also `tcp://IP:port`. `invalid(why)` makes the caller's error for any other address.
 */
export function socketTarget (address: string, invalid: (why: string) => Error, allow: { tcp: boolean }): string {
  if (address.startsWith('/')) return `unix://${address}`
  let url: URL
  try {
    url = new URL(address)
  } catch {
    throw invalid('not a URI')
  }
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw invalid('a query, fragment or user info is not allowed')
  }
  if (url.protocol === 'unix:') {
    if (url.host !== '') throw invalid('a unix URI has no authority')
    if (!url.pathname.startsWith('/') || url.pathname === '/') throw invalid('a unix URI needs an absolute socket path')
    return `unix://${decodeURIComponent(url.pathname)}`
  }
  if (url.protocol === 'tcp:' && allow.tcp) {
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1')
    const version = isIP(host)
    if (version === 0) throw invalid('a tcp URI needs an IP address, not a host name')
    if (url.port === '') throw invalid('a tcp URI needs a port')
    if (url.pathname !== '' && url.pathname !== '/') throw invalid('a tcp URI has no path')
    return version === 4 ? `ipv4:${host}:${url.port}` : `ipv6:[${host}]:${url.port}`
  }
  throw invalid(`unsupported scheme ${JSON.stringify(url.protocol)}`)
}
