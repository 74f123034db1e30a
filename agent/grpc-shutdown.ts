/** Stopping a gRPC server that serves connections the agent accepts on its own Unix socket. */
import type { Server } from '@grpc/grpc-js'
import type { Server as NetServer } from 'node:net'

/** Calls in progress get this long to finish before their connections are closed. */
const GRACE_MS = 5_000
/** After a forced shutdown, how long the socket may take to see its last connection go. */
const FORCED_CLOSE_MS = 1_000

/**
 * Stops accepting, ends the sessions (forcibly after the grace period), and resolves once the socket is closed.
 * Bounded: grpc-js may never call back `tryShutdown` for a session that was destroyed but not yet closed, so the
 * forced shutdown ends the wait itself rather than waiting for that callback.
 */
export async function stopGrpcOnSocket (grpc: Server, socket: NetServer): Promise<void> {
  // The socket closes once gRPC has ended the sessions on its connections.
  const socketClosed = new Promise<void>(resolve => { socket.close(() => resolve()) })
  let force: NodeJS.Timeout | undefined
  const forced = new Promise<'forced'>(resolve => {
    force = setTimeout(() => {
      grpc.forceShutdown()
      resolve('forced')
    }, GRACE_MS)
  })
  const ended = await Promise.race([new Promise<'ended'>(resolve => { grpc.tryShutdown(() => resolve('ended')) }), forced])
  clearTimeout(force)
  if (ended === 'ended') return await socketClosed
  let giveUp: NodeJS.Timeout | undefined
  await Promise.race([socketClosed, new Promise<void>(resolve => { giveUp = setTimeout(resolve, FORCED_CLOSE_MS) })])
  clearTimeout(giveUp)
}
