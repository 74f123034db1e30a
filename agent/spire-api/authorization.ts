/**
 * Who may call what on the SPIRE server API socket, by SPIRE's authorization policy (spire-compat.md §1.1) with
 * the kernel as the only witness:
 * - **local** callers — those the socket's mode lets connect when it is 0770: root, the socket's owner (the agent's
 *   user) and members of its group (primary or supplementary, as /proc says) — may call every method;
 * - **admin workloads** — callers attested, like a Workload API caller, to an entry this agent serves with
 *   `admin: true` — may call every method but health, as SPIRE's admin callers;
 * - **anyone** connected may call Bundle/GetBundle (SPIRE serves it without authentication).
 * Anyone else gets PERMISSION_DENIED "authorization denied for method <full method>", SPIRE's words, and a log
 * line (at most one per uid per 10 s, the next one counting those suppressed). Applied to every call, whatever
 * the socket's mode (with the default 0770 the kernel already keeps others out; with serverSocketAdminWorkloads it
 * lets everyone connect and this decides). Entries are consulted on each call, so removing `admin` (or the entry)
 * ends a workload's access at once.
 */
import { ServerInterceptingCall, status } from '@grpc/grpc-js'
import type { ServerInterceptor } from '@grpc/grpc-js'
import { statSync } from 'node:fs'
import type { Logger } from 'pino'
import { RateLimitedLog } from '../../log/limited-log'
import { isSameProcess } from '../attestation'
import type { WorkloadAttestor } from '../attestation'
import type { RegistrationStore, Selector } from '../store'
import { statusDetails } from '../status-details'
import type { WorkloadAdmission } from '../workload/admission'
import type { CallerRegistry } from './callers'

export interface AuthorizationDeps {
  readonly socketPath: string
  readonly callers: CallerRegistry
  readonly admission: Pick<WorkloadAdmission, 'identified'>
  readonly attestor: WorkloadAttestor
  readonly store: Pick<RegistrationStore, 'entriesForSelectors'>
  readonly logger: Logger
}

/** How a caller was let in, for the log. */
type Grant = { readonly as: 'anyone' | 'local' } | { readonly as: 'admin workload', readonly spiffeId: string }

const ANYONE = new Set(['/spire.api.server.bundle.v1.Bundle/GetBundle'])
const LOCAL_ONLY = '/grpc.health.v1.Health/'

export class CallerAuthorization {
  readonly #deps: AuthorizationDeps
  readonly #refusals: RateLimitedLog

  constructor (deps: AuthorizationDeps) {
    this.#deps = deps
    this.#refusals = new RateLimitedLog(deps.logger)
  }

  /**
   * A gRPC server interceptor that holds each call until its caller is authorized, or ends it PERMISSION_DENIED.
   * `started` is told of every call first (the connection's first-call deadline is met).
   */
  interceptor (started: (peer: string) => void): ServerInterceptor {
    return (method, call) => new ServerInterceptingCall(call, {
      start: next => {
        started(call.getPeer())
        next({
          onReceiveMetadata: (metadata, proceed) => {
            this.authorize(method.path, call.getPeer()).then(
              () => { proceed(metadata) },
              (err: unknown) => { call.sendStatus({ code: status.PERMISSION_DENIED, details: statusDetails((err as Error).message) }) }
            )
          }
        })
      }
    })
  }

  /** Resolves with how the caller on `peer` may call `method` (a full method name); rejects with SPIRE's denial. */
  async authorize (method: string, peer: string): Promise<Grant> {
    if (ANYONE.has(method)) return { as: 'anyone' }
    const caller = this.#deps.callers.of(peer)
    const denied = (reason: string): Error => {
      // At most one line per uid per interval: a caller refused in a loop must not flood the agent's log.
      this.#refusals.warn(`uid ${caller.uid}`, { method, caller, reason }, 'SPIRE server API: call refused')
      return new Error(`authorization denied for method ${method}`)
    }
    const connection = this.#deps.callers.connection(peer)
    if (connection === undefined) throw denied('the call\'s connection is not known (it closed)')
    const socket = this.#socketOwner()
    if (caller.uid === 0 || caller.uid === socket.uid) return this.#granted(caller.uid, { as: 'local' })
    let selectors: Selector[]
    try {
      selectors = await this.#deps.attestor.attest(connection.credentials)
    } catch (err) {
      throw denied(`attestation failed: ${(err as Error).message}`)
    }
    if (!isSameProcess(connection.pin)) throw denied('the calling process exited or its PID was reused')
    if (selectors.some(s => s.type === 'unix' && (s.value === `gid:${socket.gid}` || s.value === `supplementary_gid:${socket.gid}`))) return this.#granted(caller.uid, { as: 'local' })
    if (method.startsWith(LOCAL_ONLY)) throw denied('health is for local callers only')
    const admin = this.#deps.store.entriesForSelectors(selectors).find(entry => entry.admin)
    if (admin === undefined) throw denied('neither local (the socket\'s owner, group or root) nor attested to an entry with admin: true')
    this.#deps.logger.info({ method, caller, spiffeId: admin.spiffeId }, 'SPIRE server API: call by an admin workload')
    return this.#granted(caller.uid, { as: 'admin workload', spiffeId: admin.spiffeId })
  }

  /** An authorized uid may use the descriptors kept in reserve for known callers (agent/workload/admission.ts). */
  #granted (uid: number, grant: Grant): Grant {
    this.#deps.admission.identified(uid)
    return grant
  }

  /** The socket file's owner and group, as the kernel checks them on connect (read per call: an operator may chown it). */
  #socketOwner (): { uid: number, gid: number } {
    try {
      const { uid, gid } = statSync(this.#deps.socketPath)
      return { uid, gid }
    } catch {
      return { uid: process.geteuid?.() ?? 0, gid: process.getegid?.() ?? 0 }
    }
  }
}
