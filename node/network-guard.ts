/**
 * The network guard: between the apps of one app network (a bridge), only the node proxies' tunnel port is
 * admitted — as ztunnel's HBONE port is. Every app connection to another app goes out as mutual TLS to that port,
 * so the guard costs nothing to traffic that is served; it stops what is not: an app not yet adopted (its namespace
 * has no redirect rules yet) can neither send plaintext to another app nor receive it, and neither can any app
 * while its node proxy is down (the redirect rules stay, and lead to no listener). UDP and every other port between
 * apps are dropped too. The guard lives in the namespace that holds the bridge (the device's), in the filter
 * table's FORWARD path (Docker's DOCKER-USER chain where Docker runs, the place Docker keeps for its users' rules),
 * and bridged traffic passes through it only with bridge-nf-call-iptables on (br_netfilter), which is checked.
 * It is not removed when the node proxy stops: that is the point.
 */
import { existsSync, readFileSync } from 'node:fs'
import { IptablesError, iptablesIn, must, mustReplace } from '../proxy'
import type { Run } from '../proxy'

const BRIDGE_NF = '/proc/sys/net/bridge/bridge-nf-call-iptables'

export interface NetworkGuardOptions {
  /** The app network's bridge interface, e.g. `br-3f2a…` for a Docker network. */
  readonly bridge: string
  readonly tunnelPort: number
}

/** One chain per bridge (interface names have at most 15 characters; chain names 28). */
function chainOf (options: NetworkGuardOptions): string {
  return `CHP_GUARD_${options.bridge}`
}

/** The guard chain's rules (after `-t filter`), in order: replies, the tunnel port, then nothing else. */
export function guardRules (options: NetworkGuardOptions): string[][] {
  const chain = chainOf(options)
  return [
    ['-A', chain, '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'RETURN'],
    ['-A', chain, '-p', 'tcp', '--dport', String(options.tunnelPort), '-j', 'RETURN'],
    ['-A', chain, '-j', 'DROP']
  ]
}

/** Where the jump goes: DOCKER-USER when Docker made it (Docker's own rules would accept first otherwise), else FORWARD. */
function parentChain (run: Run): string {
  return run(['-L', 'DOCKER-USER', '-n']).status === 0 ? 'DOCKER-USER' : 'FORWARD'
}

function jumpOf (options: NetworkGuardOptions): string[] {
  return ['-i', options.bridge, '-o', options.bridge, '-j', chainOf(options)]
}

/** Installs (or refreshes) the guard for one bridge; idempotent. Throws IptablesError saying what is missing. */
export function installGuard (options: NetworkGuardOptions, run: Run = iptablesIn(undefined, 'filter'), bridgeNf = BRIDGE_NF): void {
  if (!existsSync(bridgeNf) || readFileSync(bridgeNf, 'utf8').trim() !== '1') {
    throw new IptablesError(`bridged traffic does not pass through iptables here (${bridgeNf} is not 1): load br_netfilter and set net.bridge.bridge-nf-call-iptables=1, or the guard could not stop plaintext between apps`)
  }
  // In one transaction: a guard being refreshed (every start) is never empty, not even for a moment.
  mustReplace(run, [chainOf(options)], guardRules(options))
  const parent = parentChain(run)
  if (run(['-C', parent, ...jumpOf(options)]).status !== 0) must(run, ['-I', parent, '1', ...jumpOf(options)])
}

/** Removes the guard of one bridge (tests; an operator who retires the app network). */
export function removeGuard (options: NetworkGuardOptions, run: Run = iptablesIn(undefined, 'filter')): void {
  for (const parent of ['DOCKER-USER', 'FORWARD']) {
    while (run(['-C', parent, ...jumpOf(options)]).status === 0) must(run, ['-D', parent, ...jumpOf(options)])
  }
  const chain = chainOf(options)
  if (run(['-L', chain, '-n']).status === 0) {
    must(run, ['-F', chain])
    must(run, ['-X', chain])
  }
}
