/**
 * Why the agent cannot write its data directory, in an operator's words: a read-only file system, a full one, or
 * permissions. SQLite and the file calls report such failures as "disk I/O error" or a bare errno; the kernel's
 * access(2) and statfs(2) on the directory say which it is.
 */
import { accessSync, constants, statfsSync } from 'node:fs'

/** Codes of a failed write that may be the file system's fault (SQLite's and the kernel's). */
export function isWriteFailure (err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code
  return typeof code === 'string' && (/^SQLITE_(FULL|READONLY|IOERR|CANTOPEN)/.test(code) || ['EROFS', 'ENOSPC', 'EDQUOT', 'EACCES', 'EPERM', 'EIO'].includes(code))
}

/** What keeps `dir` from being written, or undefined when the kernel sees nothing wrong. */
export function unwritableReason (dir: string): string | undefined {
  try {
    accessSync(dir, constants.W_OK)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EROFS') return `${dir} is on a read-only file system`
    if (code === 'EACCES' || code === 'EPERM') return `${dir} is not writable by this user (uid ${process.getuid?.() ?? '?'})`
    return `${dir} cannot be written (${code ?? (err as Error).message})`
  }
  try {
    const fs = statfsSync(dir)
    if (fs.bavail === 0) return `the file system of ${dir} is full (no blocks free)`
    if (fs.ffree === 0) return `the file system of ${dir} is full (no inodes free)`
  } catch {
    // statfs unavailable: nothing more to say.
  }
  return undefined
}
