/**
 * Raw HTTP/1.1 over mutual TLS for proxy tests (not a test itself): a RawConnection over a TLS socket that holds a
 * registered identity's SVID (a peer that is no sidecar, writing exact bytes to an inbound listener), and a
 * scripted server that presents an SVID (what an outbound listener connects to), recording every byte it receives.
 */
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { connect, createServer } from 'node:tls'
import type { ConnectionOptions, Server, TLSSocket } from 'node:tls'
import { RawConnection, serveScripted } from './raw-http'
import type { RawRequest, Reply, ScriptedRecord } from './raw-http'

/** An SVID as PEM (what `mesh.svid(id)` gives). */
export interface SvidPem { certPem: string, keyPem: string }

/** Resolves when `socket` is secure (true) or closed first (false); rejects after `ms`. */
async function secured (socket: TLSSocket, ms: number): Promise<boolean> {
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`no TLS handshake within ${ms} ms`)) }, ms)
    const done = (secure: boolean): void => {
      clearTimeout(timer)
      resolve(secure)
    }
    socket.once('secureConnect', () => { done(true) }).once('close', () => { done(false) })
  })
}

/**
 * A raw connection to a TLS listener on loopback with `svid` as the client certificate (the server is not
 * verified: SVIDs name no host, and the server is not under test). Throws if the handshake fails.
 */
export async function openMtls (port: number, svid: SvidPem, options: ConnectionOptions & { localAddress?: string } = {}, ms = 5000): Promise<RawConnection> {
  const socket = connect({ host: '127.0.0.1', port, cert: svid.certPem, key: svid.keyPem, rejectUnauthorized: false, ...options })
  const connection = new RawConnection(socket)
  if (!await secured(socket, ms)) {
    throw new Error(`the TLS handshake failed${connection.error === undefined ? '' : `: ${connection.error.message}`}`)
  }
  return connection
}

/**
 * A scripted HTTP/1.1 server (see serveScripted) behind mutual TLS on loopback, presenting `svid`: the server an
 * outbound listener verifies. Client certificates are requested, not checked (the client is not under test here).
 */
export async function mtlsScriptedServer (svid: SvidPem, reply: (request: RawRequest) => Reply): Promise<ScriptedRecord & { server: Server, port: number, sockets: Set<TLSSocket> }> {
  const record: ScriptedRecord = { seen: [], received: [] }
  const sockets = new Set<TLSSocket>()
  const server = createServer({ cert: svid.certPem, key: svid.keyPem, requestCert: true, rejectUnauthorized: false }, socket => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    serveScripted(socket, reply, record)
  })
  server.on('tlsClientError', () => { /* a client that gives up mid-handshake is not this server's concern */ })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { server, port: (server.address() as AddressInfo).port, ...record, sockets }
}
