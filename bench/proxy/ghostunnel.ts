/**
 * The ghostunnel pair: `ghostunnel client` (plain listener → mutual TLS to the next hop) and `ghostunnel server`
 * (mutual TLS → the backend). A TCP proxy, like the sidecars in TCP mode and haproxy in tcp mode, on the same
 * SVIDs, read from files as haproxy and nginx read them (`--keystore` cert + key, `--cacert` the bundle). Each hop
 * runs Go code on one thread (affinity.ts says how), like the others' hops.
 */
import { CLIENT_ID, SERVER_DNS_NAME, SERVER_ID } from './chaperone'
import type { Pki } from './configs'
import { allowCpus, benchCpus, firstCpu, onOneCpu } from './affinity'
import type { Hop } from './paths'
import { freePort, waitForOutput } from './processes'
import type { Processes } from './processes'

/**
 * No log line per connection, as the other proxies write none: neither its opening and closing lines nor its
 * "connection errors", which in v1.8.4 include the ordinary close of nearly every connection ("error during copy:
 * writeto …: read …: use of closed network connection": its test for that case looks only at the outer error's
 * operation, `read`). Failed handshakes are still logged.
 */
const QUIET = ['--quiet=conns', '--quiet=conn-errs']

/**
 * Go 1.24 and later offer a post-quantum hybrid key share (X25519MLKEM768) by default, which ghostunnel's server hop
 * never selects (it prefers X25519, P-256): the client would compute it for nothing on every handshake. Off, so
 * both hops do the key exchange the other paths do.
 */
export const GHOSTUNNEL_ENV: NodeJS.ProcessEnv = { GODEBUG: 'tlsmlkem=0' }

/** The server hop admits the client's SPIFFE ID only (`--allow-uri`), after the chain to the bundle. */
export function ghostunnelServerArgs (listen: number, backend: number, pki: Pki): string[] {
  return ['server', '--listen', `127.0.0.1:${listen}`, '--target', `127.0.0.1:${backend}`,
    '--keystore', pki.server.combined, '--cacert', pki.bundle, '--allow-uri', CLIENT_ID, ...QUIET]
}

/**
 * The client hop accepts the server's SPIFFE ID only (`--verify-uri`). With certificates from files, Go's TLS also
 * checks the server's name (ghostunnel has no switch for that short of no verification at all), and an SVID names
 * its workload in a URI SAN: the server SVID carries a DNS name for it, which this hop is told to expect.
 */
export function ghostunnelClientArgs (listen: number, next: number, pki: Pki): string[] {
  return ['client', '--listen', `127.0.0.1:${listen}`, '--target', `127.0.0.1:${next}`,
    '--keystore', pki.client.combined, '--cacert', pki.bundle, '--verify-uri', SERVER_ID, '--override-server-name', SERVER_DNS_NAME, ...QUIET]
}

/** "rev v1.8.4 built with go1.26.8" (its `--version`) as "v1.8.4 (go1.26.8)": the Go release matters as much. */
export function ghostunnelVersion (text: string): string {
  const m = /rev (\S+) built with (\S+)/.exec(text)
  return m === null ? 'unknown' : `${m[1]} (${m[2]})`
}

/**
 * Starts the server hop, then the client hop, each ready once it logs that it listens (not by connecting: a
 * connection to the client hop makes it dial the server hop). The client hop listens on `hops[0].port`.
 */
export async function startGhostunnelPair (binary: string, processes: Processes, pki: Pki, backend: number): Promise<Hop[]> {
  const cpus = benchCpus()
  const start = async (hop: 'client' | 'server', port: number, args: string[]): Promise<Hop> => {
    const name = `ghostunnel ${hop} hop`
    const started = processes.start(name, 'taskset', onOneCpu(firstCpu(cpus), binary, args), GHOSTUNNEL_ENV)
    await waitForOutput(started, out => out.includes('listening for connections on'), name)
    await allowCpus(started.pid, cpus)
    return { port, pid: started.pid }
  }
  const [listen, next] = [await freePort(), await freePort()]
  const server = await start('server', next, ghostunnelServerArgs(next, backend, pki))
  const client = await start('client', listen, ghostunnelClientArgs(listen, next, pki))
  return [client, server]
}
