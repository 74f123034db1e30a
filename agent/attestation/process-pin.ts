/**
 * Process pins against PID reuse: a pid alone may name a different process by the time attestation finishes, so
 * the agent records the process start time at connect and checks it again afterwards (spiffe-facts.md, "PID-reuse
 * defence"). (pid, start time) names one process for the life of the machine.
 */
import { readFileSync } from 'node:fs'
import { isGoneError, processGone } from './errors'

export interface ProcessPin {
  readonly pid: number
  /** /proc/<pid>/stat field 22, clock ticks since boot, kept as text because it only needs comparing. */
  readonly startTime: string
}

/** Pins the process now; throws AttestationError ERR_ATTESTATION_PROCESS_GONE if /proc/<pid> is gone. */
export function pinProcess (pid: number, procRoot = '/proc'): ProcessPin {
  const startTime = readStartTime(pid, procRoot)
  if (startTime === undefined) throw processGone(pid, `${procRoot}/${pid}/stat`)
  return Object.freeze({ pid, startTime })
}

/** False when the pid is gone or its start time changed (the pid now belongs to another process). */
export function isSameProcess (pin: ProcessPin, procRoot = '/proc'): boolean {
  return readStartTime(pin.pid, procRoot) === pin.startTime
}

function readStartTime (pid: number, procRoot: string): string | undefined {
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined
  let stat: string
  try {
    stat = readFileSync(`${procRoot}/${pid}/stat`, 'latin1')
  } catch (err) {
    if (isGoneError(err)) return undefined
    throw err
  }
  return parseStartTime(stat)
}

/**
 * Field 22 of a /proc/<pid>/stat line. Field 2 (comm) is in parentheses and may itself contain spaces and ")", so
 * counting starts after the last ")": the text after it begins with field 3. Undefined for a malformed line.
 */
export function parseStartTime (stat: string): string | undefined {
  const commEnd = stat.lastIndexOf(')')
  if (commEnd === -1) return undefined
  const fields = stat.slice(commEnd + 1).trim().split(/\s+/)
  const startTime = fields[22 - 3]
  return startTime !== undefined && /^\d+$/.test(startTime) ? startTime : undefined
}
