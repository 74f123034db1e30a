/**
 * The tunnel inbound listener (node mode): mutual TLS on the app's tunnel port, the peer verified and admitted,
 * then the tunnel header naming the app port the peer's app called (steps/tunnel-header.ts), then the same
 * service as a transparent inbound connection to that port — HTTP or TCP, the policy deciding at that port. A header naming one of this proxy's own
 * ports is refused: forwarding there would loop back into the proxy.
 */
import type { ListenerConfig } from '../config'
import type { DrainableServer } from '../http1/connections'
import type { IdentityState } from '../identity'
import type { SidecarServices } from '../services'
import { mtlsServer } from '../steps/tls-server'
import { readTunnelHeader } from '../steps/tunnel-header'
import { inboundAtPort, refuse } from './transparent'

/** `inbound`: the app's tunnel side, which node mode also hands its same-device callers to. */
export function tunnelInboundListener (services: SidecarServices, listener: ListenerConfig, state: IdentityState, inbound = inboundAtPort(services, listener)): DrainableServer {
  return inbound.drainable(mtlsServer(services, listener, state, socket => {
    socket.on('error', () => { socket.destroy() })
    // The peer is verified and holds one of its slots before it may send anything, the header included.
    const admitted = inbound.admission.accept(socket, 0, false)
    if (admitted === undefined) return
    readTunnelHeader(socket, services.config.headTimeoutMs, result => {
      if ('problem' in result) refuse(services, listener, socket, result.problem)
      else if (inbound.ownPorts.has(result.port)) refuse(services, listener, socket, `the tunnel header names port ${result.port}, one of the proxy's own (it would loop)`)
      else inbound.serveAdmitted(socket, result.port, admitted)
    })
  }))
}
