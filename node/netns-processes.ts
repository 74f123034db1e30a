/**
 * Which processes are in a network namespace: a scan of /proc comparing each process's /proc/<pid>/ns/net with the
 * namespace's identity (what `ip netns pids` does). Node mode picks one of them to attest for the app whose namespace
 * it is. Processes come and go during a scan; one that vanishes (or turns zombie, which drops its namespaces) is
 * skipped, as is one this process may not inspect.
 */
import { readdirSync } from 'node:fs'
import { netnsIdentity } from './netns'
import type { NetnsIdentity } from './netns'
import { NetnsError } from './errors'

const PID = /^[1-9][0-9]*$/

/** The identity of the network namespace `pid` is in, or undefined if the process is gone or cannot be inspected. */
export function netnsOfProcess (pid: number, proc = '/proc'): NetnsIdentity | undefined {
  try {
    return netnsIdentity(`${proc}/${pid}/ns/net`)
  } catch (error) {
    if (error instanceof NetnsError) return undefined
    throw error
  }
}

/** The PIDs of the processes (not threads) in the network namespace `identity`, in ascending order. */
export function pidsInNetns (identity: NetnsIdentity, proc = '/proc'): number[] {
  const pids: number[] = []
  for (const name of readdirSync(proc)) {
    if (!PID.test(name)) continue
    if (netnsOfProcess(Number(name), proc) === identity) pids.push(Number(name))
  }
  return pids.sort((a, b) => a - b)
}
