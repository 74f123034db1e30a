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
  /** Whose connections leave as they are: a sidecar's uid, or (node mode) the mark on the node proxy's sockets. */
  readonly exempt: { readonly uid: number } | { readonly mark: number }
  /** Node mode: the tunnel port, where the node proxy listens in the namespace itself; never redirected. */
  readonly tunnelPort?: number
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
  const { exempt } = options
  const inboundReturns = [...(options.tunnelPort === undefined ? [] : [options.tunnelPort]), ...options.excludeInboundPorts]
  return [
    ...inboundReturns.map(port => ['-A', INBOUND_CHAIN, '-p', 'tcp', '--dport', String(port), '-j', 'RETURN']),
    ['-A', INBOUND_CHAIN, '-p', 'tcp', '-j', 'REDIRECT', '--to-ports', String(options.inboundPort)],
    ['-A', OUTBOUND_CHAIN, ...('uid' in exempt ? ['-m', 'owner', '--uid-owner', String(exempt.uid)] : ['-m', 'mark', '--mark', String(exempt.mark)]), '-j', 'RETURN'],
    ['-A', OUTBOUND_CHAIN, '-o', 'lo', '-j', 'RETURN'],
    ['-A', OUTBOUND_CHAIN, '-d', '127.0.0.0/8', '-j', 'RETURN'],
    ...options.excludeOutboundPorts.map(port => ['-A', OUTBOUND_CHAIN, '-p', 'tcp', '--dport', String(port), '-j', 'RETURN']),
    ['-A', OUTBOUND_CHAIN, '-p', 'tcp', '-j', 'REDIRECT', '--to-ports', String(options.outboundPort)]
  ]
}

export interface Run {
  /** One `iptables -t <table> …` command. */
  (args: string[]): { status: number | null, stderr: string }
  readonly table: string
  /**
   * Replaces `chains` (made if missing) with `rules` in one transaction (iptables-restore --noflush): a chain is
   * never seen half-filled, so no connection slips past rules being replaced.
   */
  replaceChains: (chains: readonly string[], rules: readonly string[][]) => { status: number | null, stderr: string }
}

/** Runs `iptables -t <table> …` in this network namespace, or (node mode) in the one at `netnsPath`, through nsenter. */
export function iptablesIn (netnsPath?: string, table: 'nat' | 'filter' = 'nat'): Run {
  const enter = netnsPath === undefined ? [] : ['nsenter', `--net=${netnsPath}`]
  const spawn = (command: string, args: string[], input?: string): { status: number | null, stderr: string } => {
    const [program, ...rest] = [...enter, command, ...args]
    const result = spawnSync(program, rest, { encoding: 'utf8', ...(input === undefined ? {} : { input }) })
    if (result.error !== undefined) throw new IptablesError(`cannot run ${[...enter, command].join(' ')}: ${result.error.message} (install iptables${netnsPath === undefined ? '' : ' and util-linux'})`)
    return { status: result.status, stderr: result.stderr }
  }
  return Object.assign((args: string[]) => spawn('iptables', ['-w', '-t', table, ...args]), {
    table,
    replaceChains: (chains: readonly string[], rules: readonly string[][]) =>
      spawn('iptables-restore', ['--noflush'], [`*${table}`, ...chains.map(chain => `:${chain} - [0:0]`), ...rules.map(rule => rule.join(' ')), 'COMMIT', ''].join('\n'))
  })
}

/** Runs one command; throws IptablesError saying what is needed when it fails. */
export function must (run: Run, args: string[]): void {
  const { status, stderr } = run(args)
  if (status !== 0) throw failure(`iptables -t ${run.table} ${args.join(' ')}`, stderr)
}

function failure (command: string, stderr: string): IptablesError {
  const denied = /Permission denied|you must be root/i.test(stderr)
  return new IptablesError(denied
    ? 'iptables needs root or the NET_ADMIN capability in this network namespace (in Docker: cap_add: [NET_ADMIN])'
    : `${command} failed: ${stderr.trim()}`)
}

/** Replaces whole chains (Run.replaceChains); throws IptablesError saying what is needed when it fails. */
export function mustReplace (run: Run, chains: readonly string[], rules: readonly string[][]): void {
  const { status, stderr } = run.replaceChains(chains, rules)
  if (status !== 0) throw failure(`iptables-restore --noflush (-t ${run.table}: ${chains.join(', ')})`, stderr)
}

/** Every iptables command `install` runs, for --dry-run. */
export function installCommands (options: IptablesOptions): string[][] {
  return [
    ...[INBOUND_CHAIN, OUTBOUND_CHAIN].flatMap(chain => [['-N', chain], ['-F', chain]]),
    ...redirectRules(options),
    ...JUMPS.map(([from, to]) => ['-A', from, '-p', 'tcp', '-j', to])
  ]
}

/** Installs, or replaces in one transaction, the rules; then adds each jump to them if missing. Idempotent. */
export function install (options: IptablesOptions, run: Run = iptablesIn()): void {
  mustReplace(run, [INBOUND_CHAIN, OUTBOUND_CHAIN], redirectRules(options))
  for (const [from, to] of JUMPS) {
    const jump = [from, '-p', 'tcp', '-j', to]
    if (run(['-C', ...jump]).status !== 0) must(run, ['-A', ...jump])
  }
}

export function cleanup (run: Run = iptablesIn()): void {
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
