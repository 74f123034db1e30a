/**
 * `chaperone proxy init-iptables`: the sidecar's init step (like istio-init), in the current network namespace.
 * The app's outbound TCP is redirected to the sidecar's transparent outbound port, inbound TCP to its transparent
 * inbound (mTLS) port. Exempt: the sidecar's own uid (its connections must leave as they are, or they would loop
 * back into it), loopback, and the configured ports. Idempotent: our chains are flushed and refilled, and each
 * jump is added only if missing. `cleanup` removes everything it added.
 */
import { spawnSync } from 'node:child_process'
import { ChaperoneError } from '../../spiffe/errors'

export interface IptablesOptions {
  readonly proxyUid: number
  readonly inboundPort: number
  readonly outboundPort: number
  readonly excludeInboundPorts: readonly number[]
  readonly excludeOutboundPorts: readonly number[]
}

export class IptablesError extends ChaperoneError<'ERR_IPTABLES'> {
  constructor (message: string) {
    super('ERR_IPTABLES', message)
  }
}

const INBOUND_CHAIN = 'CHAPERONE_INBOUND'
const OUTBOUND_CHAIN = 'CHAPERONE_OUTPUT'
const JUMPS: ReadonlyArray<readonly [string, string]> = [['PREROUTING', INBOUND_CHAIN], ['OUTPUT', OUTBOUND_CHAIN]]

/** The rules, as iptables argument lists (after `-t nat`), in order. */
export function redirectRules (options: IptablesOptions): string[][] {
  return [
    ...options.excludeInboundPorts.map(port => ['-A', INBOUND_CHAIN, '-p', 'tcp', '--dport', String(port), '-j', 'RETURN']),
    ['-A', INBOUND_CHAIN, '-p', 'tcp', '-j', 'REDIRECT', '--to-ports', String(options.inboundPort)],
    ['-A', OUTBOUND_CHAIN, '-m', 'owner', '--uid-owner', String(options.proxyUid), '-j', 'RETURN'],
    ['-A', OUTBOUND_CHAIN, '-o', 'lo', '-j', 'RETURN'],
    ['-A', OUTBOUND_CHAIN, '-d', '127.0.0.0/8', '-j', 'RETURN'],
    ...options.excludeOutboundPorts.map(port => ['-A', OUTBOUND_CHAIN, '-p', 'tcp', '--dport', String(port), '-j', 'RETURN']),
    ['-A', OUTBOUND_CHAIN, '-p', 'tcp', '-j', 'REDIRECT', '--to-ports', String(options.outboundPort)]
  ]
}

type Run = (args: string[]) => { status: number | null, stderr: string }

function iptables (args: string[]): { status: number | null, stderr: string } {
  const result = spawnSync('iptables', ['-w', '-t', 'nat', ...args], { encoding: 'utf8' })
  if (result.error !== undefined) throw new IptablesError(`cannot run iptables: ${result.error.message} (install iptables)`)
  return { status: result.status, stderr: result.stderr }
}

function must (run: Run, args: string[]): void {
  const { status, stderr } = run(args)
  if (status === 0) return
  const denied = /Permission denied|you must be root/i.test(stderr)
  throw new IptablesError(denied
    ? 'iptables needs root or the NET_ADMIN capability in this network namespace (in Docker: cap_add: [NET_ADMIN])'
    : `iptables -t nat ${args.join(' ')} failed: ${stderr.trim()}`)
}

/** Every iptables command `install` runs, for --dry-run. */
export function installCommands (options: IptablesOptions): string[][] {
  return [
    ...[INBOUND_CHAIN, OUTBOUND_CHAIN].flatMap(chain => [['-N', chain], ['-F', chain]]),
    ...redirectRules(options),
    ...JUMPS.map(([from, to]) => ['-A', from, '-p', 'tcp', '-j', to])
  ]
}

export function install (options: IptablesOptions, run: Run = iptables): void {
  for (const chain of [INBOUND_CHAIN, OUTBOUND_CHAIN]) {
    if (run(['-L', chain, '-n']).status !== 0) must(run, ['-N', chain])
    must(run, ['-F', chain])
  }
  for (const rule of redirectRules(options)) must(run, rule)
  for (const [from, to] of JUMPS) {
    const jump = [from, '-p', 'tcp', '-j', to]
    if (run(['-C', ...jump]).status !== 0) must(run, ['-A', ...jump])
  }
}

export function cleanup (run: Run = iptables): void {
  for (const [from, to] of JUMPS) {
    while (run(['-C', from, '-p', 'tcp', '-j', to]).status === 0) must(run, ['-D', from, '-p', 'tcp', '-j', to])
  }
  for (const chain of [INBOUND_CHAIN, OUTBOUND_CHAIN]) {
    if (run(['-L', chain, '-n']).status === 0) {
      must(run, ['-F', chain])
      must(run, ['-X', chain])
    }
  }
}
