/**
 * The forward step for TCP: two sockets piped both ways by the streams themselves (no per-chunk JS), closed
 * together, with the idle timeout on the client side and bytes counted from the sockets' counters at close.
 */
import type { Socket } from 'node:net'
import type { ListenerConfig } from '../config'
import type { SidecarServices } from '../services'

export function pipeSockets (services: SidecarServices, listener: ListenerConfig, client: Socket, upstream: Socket): void {
  const { metrics } = services
  metrics.active.inc({ listener: listener.name })
  client.setNoDelay(true)
  upstream.setNoDelay(true)
  client.setTimeout(services.config.idleTimeoutMs, () => { client.destroy() })
  const closeBoth = (): void => {
    client.destroy()
    upstream.destroy()
  }
  client.on('error', closeBoth).on('close', closeBoth)
  upstream.on('error', closeBoth).on('close', closeBoth)
  client.once('close', () => {
    metrics.active.dec({ listener: listener.name })
    metrics.bytes.inc({ listener: listener.name, direction: 'rx' }, client.bytesRead)
    metrics.bytes.inc({ listener: listener.name, direction: 'tx' }, client.bytesWritten)
  })
  client.pipe(upstream)
  upstream.pipe(client)
}
