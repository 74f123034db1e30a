/**
 * Hot reload: the policy file is watched (its directory, so editors that write a new file and rename it, and
 * mounted config directories that swap a symlink, are seen); `reload()` reads it on demand (the CLI calls it on
 * SIGHUP: a library never takes a process's signals for itself). A new file that is invalid
 * is rejected with its problems logged and the last good policy stays in force. Every reload is counted in
 * `chaperone_policy_reloads_total{result="ok|unchanged|failed"}` and reports the hash in force.
 */
import { EventEmitter } from 'node:events'
import { watch } from 'node:fs'
import type { FSWatcher } from 'node:fs'
import { basename, dirname } from 'node:path'
import type { Logger } from 'pino'
import { Counter, Gauge, Registry } from 'prom-client'
import { readConfigFile } from '../config/load'
import { checkPolicySource } from './document'
import { PolicyError, formatProblem } from './errors'
import type { PolicyProblem } from './errors'
import { compilePolicy } from './engine'
import type { CompiledPolicy, Decision, PolicyRequest } from './engine'
import { policyWarnings } from './lint'

export interface PolicyWatcherOptions {
  readonly logger?: Logger
  /** Watch the file for changes (default true). */
  readonly watch?: boolean
  /** Quiet time after a change before reloading, so a file written in pieces is read once (default 100 ms). */
  readonly debounceMs?: number
  /** Where the policy metrics are registered (default: a registry of the watcher's own). */
  readonly registry?: Registry
}

export type ReloadTrigger = 'watch' | 'sighup' | 'manual'

export interface ReloadResult {
  readonly result: 'ok' | 'unchanged' | 'failed'
  readonly trigger: ReloadTrigger
  /** The hash of the policy in force after the reload. */
  readonly hash: string
  readonly previousHash: string
  /** Why a failed reload was rejected. */
  readonly problems?: readonly PolicyProblem[]
  readonly at: Date
}

const WARNINGS_LOGGED = 20

export class PolicyWatcher extends EventEmitter<{ reload: [ReloadResult] }> {
  readonly file: string
  readonly registry: Registry
  /** Decides with the policy in force at the time of the call; usable detached. */
  readonly decide = (request: PolicyRequest): Decision => this.current.decide(request)
  /** Whether the policy in force could allow some request of this pair at this port (see CompiledPolicy.mayAllow). */
  readonly mayAllow = (request: Omit<PolicyRequest, 'http'>): boolean => this.current.mayAllow(request)
  private current: CompiledPolicy
  private readonly logger: Logger | undefined
  private readonly reloads: Counter<'result'>
  private readonly info: Gauge<'hash'>
  private readonly rules: Gauge
  private readonly watcher: FSWatcher | undefined
  private timer: NodeJS.Timeout | undefined
  private last: ReloadResult | undefined

  /** Loads the policy (throws PolicyError when it is invalid: there is no last good policy yet) and starts watching. */
  constructor (file: string, options: PolicyWatcherOptions = {}) {
    super()
    this.file = file
    this.logger = options.logger
    const { loaded, problems } = checkPolicySource(() => readConfigFile(file), file)
    if (loaded === undefined) throw new PolicyError(file, problems)
    this.current = compilePolicy(loaded)
    this.registry = options.registry ?? new Registry()
    this.reloads = new Counter({ name: 'chaperone_policy_reloads_total', help: 'Policy reloads by result: ok, unchanged, failed (the last good policy stays in force)', labelNames: ['result'], registers: [this.registry] })
    this.info = new Gauge({ name: 'chaperone_policy_info', help: 'The policy in force, by hash (value 1)', labelNames: ['hash'], registers: [this.registry] })
    this.rules = new Gauge({ name: 'chaperone_policy_rules', help: 'Rules in the policy in force', registers: [this.registry] })
    for (const result of ['ok', 'unchanged', 'failed']) this.reloads.inc({ result }, 0)
    this.publish()
    this.logWarnings()
    this.logger?.info({ event: 'policy_loaded', file, hash: this.current.hash, rules: this.current.document.rules.length }, 'policy loaded')
    if (options.watch !== false) {
      const debounceMs = options.debounceMs ?? 100
      const name = basename(file)
      this.watcher = watch(dirname(file), { persistent: false }, (_event, changed) => {
        // The file itself, or a mounted config directory's `..data` symlink swap.
        if (changed !== null && changed !== name && !changed.startsWith('..')) return
        clearTimeout(this.timer)
        this.timer = setTimeout(() => { this.reload('watch') }, debounceMs).unref()
      })
      this.watcher.on('error', err => { this.logger?.error({ event: 'policy_watch_failed', file, err: err.message }, 'cannot watch the policy file; reload with SIGHUP') })
    }
  }

  /** The policy in force. */
  get policy (): CompiledPolicy {
    return this.current
  }

  /** The last reload's outcome (a rejected one says why), or undefined before the first. */
  get lastReload (): ReloadResult | undefined {
    return this.last
  }

  /** Reads the file again; a valid new policy replaces the current one, an invalid one is rejected. */
  reload (trigger: ReloadTrigger = 'manual'): ReloadResult {
    const previousHash = this.current.hash
    const at = new Date()
    const { loaded, problems } = checkPolicySource(() => readConfigFile(this.file), this.file)
    let outcome: ReloadResult
    if (loaded === undefined) {
      outcome = { result: 'failed', trigger, hash: previousHash, previousHash, problems, at }
      this.logger?.error({ event: 'policy_reload_failed', file: this.file, trigger, hash: previousHash, problems: problems.map(p => formatProblem(p, this.file)) },
        `policy reload rejected (${problems.length} problem${problems.length === 1 ? '' : 's'}); the last good policy stays in force`)
    } else if (loaded.hash === previousHash) {
      outcome = { result: 'unchanged', trigger, hash: previousHash, previousHash, at }
      this.logger?.debug({ event: 'policy_unchanged', file: this.file, trigger, hash: previousHash }, 'policy unchanged')
    } else {
      this.current = compilePolicy(loaded)
      outcome = { result: 'ok', trigger, hash: loaded.hash, previousHash, at }
      this.publish()
      this.logWarnings()
      this.logger?.info({ event: 'policy_reloaded', file: this.file, trigger, hash: loaded.hash, previousHash, rules: loaded.document.rules.length }, 'policy reloaded')
    }
    this.reloads.inc({ result: outcome.result })
    this.last = outcome
    this.emit('reload', outcome)
    return outcome
  }

  close (): void {
    clearTimeout(this.timer)
    this.watcher?.close()
  }

  private publish (): void {
    this.info.reset()
    this.info.set({ hash: this.current.hash }, 1)
    this.rules.set(this.current.document.rules.length)
  }

  private logWarnings (): void {
    if (this.logger === undefined) return
    const warnings = policyWarnings(this.current)
    for (const warning of warnings.slice(0, WARNINGS_LOGGED)) {
      this.logger.warn({ event: 'policy_warning', file: this.file, warning: formatProblem(warning, this.file) }, 'policy warning')
    }
  }
}
