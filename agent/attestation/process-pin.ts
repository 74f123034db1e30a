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

/**
 * False when the process has exited — gone, a zombie its parent has not reaped yet, or its pid now names another
 * process: for holding an identity for as long as a process lives (the Delegated Identity API's PID subscriptions).
 */
export function isRunning (pin: ProcessPin, procRoot = '/proc'): boolean {
  const stat = readStat(pin.pid, procRoot)
  return stat !== undefined && parseStartTime(stat) === pin.startTime && !EXITED_STATES.has(parseState(stat) ?? 'X')
}

/** /proc/<pid>/stat states of a process that has exited: zombie, dead. */
const EXITED_STATES = new Set(['Z', 'X', 'x'])

function readStartTime (pid: number, procRoot: string): string | undefined {
  const stat = readStat(pid, procRoot)
  return stat === undefined ? undefined : parseStartTime(stat)
}

function readStat (pid: number, procRoot: string): string | undefined {
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined
  try {
    return readFileSync(`${procRoot}/${pid}/stat`, 'latin1')
  } catch (err) {
    if (isGoneError(err)) return undefined
    throw err
  }
}

/** Field 3 of a /proc/<pid>/stat line, the state (R, S, D, Z, …): the first field after comm. */
function parseState (stat: string): string | undefined {
  return stat.slice(stat.lastIndexOf(')') + 1).trim().split(/\s+/)[0]
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
