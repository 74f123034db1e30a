/**
 * The bare Node.js TLS pipe: a two-hop TCP proxy with nothing but Node's own TLS and stream pipes, on the same SVIDs
 * and the same Node flags as the sidecars. Each hop checks what ghostunnel checks (the chain to the bundle and the
 * one SPIFFE ID it is given), and nothing else: no policy, no metrics, no Workload API, no session resumption. It is
 * the floor of any TCP proxy written for Node.js on this machine, measured in the same run as the sidecars, so a
 * figure of theirs can be read against what Node itself allows. Run as a script it is one hop:
 * `node node-tls-pipe.js client|server <listen port> <next port> <cert> <key> <bundle> <peer SPIFFE ID>`.
 */
import { readFileSync } from 'node:fs'
import { connect as connectTcp, createServer } from 'node:net'
import type { Socket } from 'node:net'
import { connect as connectTls, createServer as createTlsServer } from 'node:tls'
import type { PeerCertificate, TLSSocket } from 'node:tls'
import { CLIENT_ID, NODE_FLAGS, SERVER_ID } from './chaperone'
import type { Pki } from './configs'
import type { Hop } from './paths'
import { freePort, waitForOutput } from './processes'
import type { Processes } from './processes'

const LOOPBACK = '127.0.0.1'

/** Whether the certificate's URI SANs include `id`. */
export function namesId (cert: PeerCertificate, id: string): boolean {
  return (cert.subjectaltname ?? '').split(', ').includes(`URI:${id}`)
}

/** Each side closes the other; bytes flow both ways through the streams' own pipes. */
function pipeBoth (a: Socket, b: Socket): void {
  const close = (): void => {
    a.destroy()
    b.destroy()
  }
  a.on('error', close).on('close', close)
  b.on('error', close).on('close', close)
  a.pipe(b).pipe(a)
}

interface HopOptions { readonly listen: number, readonly next: number, readonly cert: Buffer, readonly key: Buffer, readonly ca: Buffer, readonly peerId: string }

/** Plain TCP in, mutual TLS to the server hop, whose certificate must name `peerId`. */
function clientHop ({ listen, next, cert, key, ca, peerId }: HopOptions): void {
  createServer({ noDelay: true }, client => {
    const server = connectTls({
      host: LOOPBACK,
      port: next,
      cert,
      key,
      ca,
      checkServerIdentity: (_host, peer) => namesId(peer, peerId) ? undefined : new Error(`the server is not ${peerId}`)
    })
    server.setNoDelay(true)
    pipeBoth(client, server)
  }).listen(listen, LOOPBACK, () => { console.log('listening') })
}

/** Mutual TLS in, the client's certificate naming `peerId`; plain TCP to the backend. */
function serverHop ({ listen, next, cert, key, ca, peerId }: HopOptions): void {
  createTlsServer({ cert, key, ca, requestCert: true, rejectUnauthorized: true }, (client: TLSSocket) => {
    if (!namesId(client.getPeerCertificate(), peerId)) {
      client.destroy()
      return
    }
    client.setNoDelay(true)
    pipeBoth(client, connectTcp({ host: LOOPBACK, port: next, noDelay: true }))
  }).listen(listen, LOOPBACK, () => { console.log('listening') })
}

/** The hop's command line, after `node <flags> node-tls-pipe.js`. */
export function hopArgs (role: 'client' | 'server', listen: number, next: number, pki: Pki): string[] {
  const svid = role === 'client' ? pki.client : pki.server
  return [role, String(listen), String(next), svid.cert, svid.key, pki.bundle, role === 'client' ? SERVER_ID : CLIENT_ID]
}

/**
 * Starts the server hop, then the client hop, each ready once it says it listens; the client hop listens on
 * `hops[0].port`. `script`: this module, built (tests run the sources, so they name the built file).
 */
export async function startNodeTlsPair (processes: Processes, pki: Pki, backend: number, script = __filename): Promise<Hop[]> {
  const [clientPort, serverPort] = [await freePort(), await freePort()]
  const start = async (role: 'client' | 'server', listen: number, next: number): Promise<Hop> => {
    const name = `bare Node.js TLS ${role} hop`
    const started = processes.start(name, process.execPath, [...NODE_FLAGS, script, ...hopArgs(role, listen, next, pki)])
    await waitForOutput(started, out => out.includes('listening'), name)
    return { port: listen, pid: started.pid }
  }
  const server = await start('server', serverPort, backend)
  return [await start('client', clientPort, serverPort), server]
}

if (require.main === module) {
  const [role, listen, next, cert, key, ca, peerId] = process.argv.slice(2)
  const options = { listen: Number(listen), next: Number(next), cert: readFileSync(cert), key: readFileSync(key), ca: readFileSync(ca), peerId }
  if (role === 'client') clientHop(options)
  else if (role === 'server') serverHop(options)
  else throw new Error(`usage: node-tls-pipe.js client|server <listen> <next> <cert> <key> <bundle> <peer SPIFFE ID>, not ${JSON.stringify(role)}`)
}
