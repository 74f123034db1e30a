/** Stopping a gRPC server that serves connections the agent accepts on its own Unix socket. */
import type { Server } from '@grpc/grpc-js'
import type { Server as NetServer } from 'node:net'

/** Calls in progress get this long to finish before their connections are closed. */
const GRACE_MS = 5_000

/** Stops accepting, ends the sessions (forcibly after the grace period), and resolves once the socket is closed. */
export async function stopGrpcOnSocket (grpc: Server, socket: NetServer): Promise<void> {
  // The socket closes once gRPC has ended the sessions on its connections.
  const socketClosed = new Promise<void>(resolve => { socket.close(() => resolve()) })
  const force = setTimeout(() => { grpc.forceShutdown() }, GRACE_MS)
  await new Promise<void>(resolve => { grpc.tryShutdown(() => resolve()) })
  clearTimeout(force)
  await socketClosed
}
