/** Errors of workload attestation: the caller cannot be identified, so it gets no identity. */
import { readFile } from 'node:fs/promises'
import { ChaperoneError } from '../../spiffe/errors'

export type AttestationErrorCode =
  | 'ERR_ATTESTATION_PEERCRED'
  | 'ERR_ATTESTATION_PROCESS_GONE'

export class AttestationError extends ChaperoneError<AttestationErrorCode> {}

/** The caller exited (or was never there) before /proc could tell us who it is. */
export function processGone (pid: number, what: string, cause?: unknown): AttestationError {
  return new AttestationError('ERR_ATTESTATION_PROCESS_GONE', `process ${pid} is gone: cannot read ${what}`, { cause })
}

/** ENOENT/ESRCH from /proc/<pid>/… mean the process no longer exists (or is a zombie without an exe). */
export function isGoneError (err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code
  return code === 'ENOENT' || code === 'ESRCH'
}

/** Reads /proc/<pid>/<name>; a process that is gone becomes ERR_ATTESTATION_PROCESS_GONE naming the file. */
export async function readProcFile (procRoot: string, pid: number, name: string, encoding: BufferEncoding): Promise<string> {
  const path = `${procRoot}/${pid}/${name}`
  try {
    return await readFile(path, encoding)
  } catch (err) {
    if (isGoneError(err)) throw processGone(pid, path, err)
    throw err
  }
}
