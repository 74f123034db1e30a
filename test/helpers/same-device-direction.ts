/**
 * The attack stand's third direction (not a test itself): node mode's same-device handoff
 * (proxy/listeners/same-device.ts), in this process. The local app connects in plain TCP to a listener of the
 * stand's own; each connection is handed, by the real `handOff` on the client sidecar's side, to the server
 * sidecar's inbound side (`inboundAtPort(…).serveSameDevice`), as node mode hands a call between two of its apps.
 * There is no TLS on this path and no outbound HTTP engine before the callee's: its HTTP engine alone must refuse
 * what the other directions refuse.
 */
import { once } from 'node:events'
import { createServer } from 'node:net'
import type { AddressInfo, Socket } from 'node:net'
import { inboundAtPort } from '../../proxy/listeners/transparent'
import { handOff } from '../../proxy/listeners/same-device'
import type { SameDeviceApp } from '../../proxy/listeners/same-device'
import { MtlsConnector } from '../../proxy/steps/tls-client'
import type { Backend, Direction, Teardown } from './attack-stand'
import type { RunningSidecar } from './mesh'
import { RawConnection } from './raw-http'
import type { ScriptedRecord } from './raw-http'

/** `client`'s outbound listener `raw` names the caller's side; `server` must serve `ports` in HTTP mode (httpPorts). */
export async function sameDeviceDirection (client: RunningSidecar, server: RunningSidecar, recorder: ScriptedRecord, ports: Readonly<Record<Backend, number>>, expect: string): Promise<Direction & { close: () => void }> {
  const caller = client.sidecar.services
  const callerListener = caller.config.listeners.find(l => l.name === 'raw')
  const callee = server.sidecar.services
  if (callerListener === undefined) throw new Error('the client sidecar has no listener "raw"')
  const connector = new MtlsConnector(caller, callerListener)
  const lent = new Set<Socket>()
  const listeners: Array<ReturnType<typeof createServer>> = []
  const listen = async (backend: Backend): Promise<number> => {
    const listener = callee.config.listeners.find(l => l.name === backend)
    if (listener === undefined) throw new Error(`the server sidecar has no listener "${backend}"`)
    const inbound = inboundAtPort(callee, listener)
    const to: SameDeviceApp = { get id () { return callee.identity.current?.context.spiffeId }, httpPorts: callee.config.httpPorts, serve: inbound.serveSameDevice }
    const destination = { target: { host: '127.0.0.1', port: ports[backend] }, expect, servicePort: ports[backend] }
    const server = createServer(socket => {
      lent.add(socket)
      socket.once('close', () => lent.delete(socket))
      handOff(caller, callerListener, connector, destination, to, socket, () => {})
    }).listen(0, '127.0.0.1')
    listeners.push(server)
    await once(server, 'listening')
    return (server.address() as AddressInfo).port
  }
  const entry = { app: await listen('app'), raw: await listen('raw') }
  return {
    name: 'same-device',
    sidecar: server,
    recorder,
    open: async (test: Teardown, backend: Backend) => {
      const connection = await RawConnection.open(entry[backend])
      test.teardown(() => { connection.close() })
      return connection
    },
    close: () => {
      for (const socket of lent) socket.destroy()
      for (const server of listeners) server.close()
    }
  }
}
