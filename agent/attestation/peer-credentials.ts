/**
 * SO_PEERCRED: the kernel's record of which process connected to a Unix socket, with the uid and gid it had at
 * connect time. The caller cannot forge it (DESIGN.md, security invariant 3). Node has no API for it, so libc's
 * getsockopt is called through koffi.
 */
import koffi from 'koffi'
import type { Socket } from 'node:net'
import { AttestationError } from './errors'

export interface PeerCredentials {
  readonly pid: number
  readonly uid: number
  readonly gid: number
}

const SOL_SOCKET = 1
const SO_PEERCRED = 17

interface Ucred { pid: number, uid: number, gid: number }
type GetPeerCred = (fd: number, level: number, option: number, out: Partial<Ucred>, length: number[]) => number

let getsockopt: GetPeerCred | undefined

/** Bound on first use, so that merely importing the agent works where libc.so.6 is absent (the error says so). */
function bindGetsockopt (): GetPeerCred {
  if (getsockopt !== undefined) return getsockopt
  try {
    const ucred = koffi.struct({ pid: 'int32', uid: 'uint32', gid: 'uint32' })
    const libc = koffi.load('libc.so.6')
    getsockopt = libc.func('getsockopt', 'int', ['int', 'int', 'int', koffi.out(koffi.pointer(ucred)), koffi.inout(koffi.pointer('uint32_t'))]) as GetPeerCred
    return getsockopt
  } catch (err) {
    throw new AttestationError('ERR_ATTESTATION_PEERCRED', `cannot call getsockopt from libc.so.6 (SO_PEERCRED needs Linux): ${(err as Error).message}`, { cause: err })
  }
}

/** SO_PEERCRED of an accepted Unix socket: who the kernel says is on the other end. Throws AttestationError if unavailable. */
export function peerCredentials (socket: Socket): PeerCredentials {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd
  if (typeof fd !== 'number' || fd < 0) {
    throw new AttestationError('ERR_ATTESTATION_PEERCRED', 'cannot read peer credentials: the socket has no open file descriptor (closed, or not an accepted Unix socket)')
  }
  const cred: Partial<Ucred> = {}
  const length = [12]
  if (bindGetsockopt()(fd, SOL_SOCKET, SO_PEERCRED, cred, length) !== 0) {
    throw new AttestationError('ERR_ATTESTATION_PEERCRED', `getsockopt(SO_PEERCRED) failed on fd ${fd} with errno ${koffi.errno()}`)
  }
  // Only Unix sockets carry a peer process; for TCP the kernel answers pid 0 and the overflow uid.
  if (typeof cred.pid !== 'number' || cred.pid <= 0 || typeof cred.uid !== 'number' || typeof cred.gid !== 'number') {
    throw new AttestationError('ERR_ATTESTATION_PEERCRED', `the socket on fd ${fd} has no peer process (not a Unix domain socket?)`)
  }
  return Object.freeze({ pid: cred.pid, uid: cred.uid, gid: cred.gid })
}
