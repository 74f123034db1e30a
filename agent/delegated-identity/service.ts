/**
 * The Delegated Identity API's handlers (spire.api.agent.delegatedidentity.v1.DelegatedIdentity), as SPIRE's agent
 * answers them: every call first attests its caller by the kernel's word and checks it is an authorized delegate
 * (delegate-authorization.ts); calls naming a workload then read it from the request (workload-subject.ts). As on
 * SPIRE's admin socket, the Workload API's security header is not required. One handler set per socket: each knows
 * its own connections.
 */
import type { ServerUnaryCall, ServerWritableStream, UntypedServiceImplementation, sendUnaryData } from '@grpc/grpc-js'
import { status } from '@grpc/grpc-js'
import type { Logger } from 'pino'
import { RateLimitedLog } from '../../log/limited-log'
import { parseSpiffeId } from '../../spiffe/id'
import { isRunning } from '../attestation'
import type { WorkloadAttestor } from '../attestation'
import type { AgentCa } from '../ca'
import type { RegistrationStore } from '../store'
import { jwtSvidToProto } from '../spire-api/svid-mapping'
import type { JwtSvidMessage } from '../spire-api/svid-mapping'
import { asStatus, endStream } from '../workload/status-error'
import type { Delegate, DelegateAuthorization, DelegateConnections } from './delegate-authorization'
import { AUDIENCE_REQUIRED, NO_IDENTITY, PROCESS_EXITED } from './statuses'
import { isDelegable } from './subscriptions'
import type { DelegatedSubscriptions, SubscriptionKind } from './subscriptions'
import { describeSubject, workloadSubject } from './workload-subject'
import type { SubjectRequest, WorkloadSubject } from './workload-subject'

export interface DelegatedServiceDeps {
  /** The socket the handlers serve: its connections (and admission, where it has limits). */
  readonly socket: DelegateConnections
  readonly authorization: DelegateAuthorization
  /** Attests the PIDs delegates name. */
  readonly attestor: WorkloadAttestor
  readonly subscriptions: DelegatedSubscriptions
  readonly store: Pick<RegistrationStore, 'entriesForSelectors'>
  readonly ca: Pick<AgentCa, 'mintJwtSvid'>
  readonly logger: Logger
}

interface JwtSvidsRequest extends SubjectRequest {
  audience: string[]
}

const API = 'delegated identity API'

export function delegatedIdentityHandlers (deps: DelegatedServiceDeps): UntypedServiceImplementation {
  const { authorization, subscriptions, logger } = deps
  const refusals = new RateLimitedLog(logger)
  /** Logs a request refused for what it carries, at most once per uid and code per 10 s; returns the error. */
  const refused = (method: string, caller: { uid: number, pid: number } | undefined, err: unknown, fields: Record<string, unknown> = {}): unknown => {
    const { code, details } = err as { code?: status, details?: unknown }
    // INTERNAL (attestation failed) is logged where it happened, with its cause.
    if (code !== undefined && code !== status.INTERNAL) {
      refusals.warn(`${caller?.uid ?? 'unknown'} ${code}`, { method, uid: caller?.uid, pid: caller?.pid, ...fields, code: status[code], reason: details }, `${API}: request refused`)
    }
    return err
  }
  const subjectOf = async (method: string, delegate: Delegate, request: SubjectRequest): Promise<WorkloadSubject> => {
    try {
      return await workloadSubject(request, deps.attestor, logger)
    } catch (err) {
      throw refused(method, delegate.caller, err, { delegate: delegate.spiffeId })
    }
  }
  const subscribe = (kind: SubscriptionKind, method: string) => (call: ServerWritableStream<SubjectRequest, unknown>): void => {
    void (async () => {
      const delegate = await authorization.authorize(deps.socket, call.getPeer())
      const subject = kind === 'x509-svids' ? await subjectOf(method, delegate, call.request) : undefined
      subscriptions.open(kind, delegate, subject, call)
    })().catch((err: unknown) => { endStream(call, asStatus(err, logger, API)) })
  }

  /** SPIRE's order: the audience, the delegate, the workload; no admin or downstream entry's token (SPIRE #6972). */
  const fetchJwtSvids = async (request: JwtSvidsRequest, peer: string): Promise<{ svids: JwtSvidMessage[] }> => {
    // SPIRE checks only that there is one; an empty one is refused too, as the Workload API does, rather than minted.
    if (request.audience.length === 0 || request.audience.some(audience => audience === '')) {
      throw refused('FetchJWTSVIDs', deps.socket.connections.get(peer)?.credentials, AUDIENCE_REQUIRED())
    }
    const delegate = await authorization.authorize(deps.socket, peer)
    const subject = await subjectOf('FetchJWTSVIDs', delegate, request)
    const svids: JwtSvidMessage[] = []
    for (const entry of deps.store.entriesForSelectors(subject.selectors).filter(isDelegable)) {
      const minted = await deps.ca.mintJwtSvid({
        spiffeId: parseSpiffeId(entry.spiffeId), audience: request.audience, ...(entry.jwtSvidTtl > 0 ? { ttlSeconds: entry.jwtSvidTtl } : {})
      })
      svids.push(jwtSvidToProto(entry.spiffeId, minted, entry.hint))
    }
    // For a PID, the tokens are for the process attested only if it is still there (SPIRE leaves that to the delegate).
    if (subject.pin !== undefined && !isRunning(subject.pin)) throw refused('FetchJWTSVIDs', delegate.caller, PROCESS_EXITED(subject.pin.pid))
    if (svids.length === 0) throw refused('FetchJWTSVIDs', delegate.caller, NO_IDENTITY(), describeSubject(subject))
    logger.debug({ delegate: delegate.spiffeId, uid: delegate.caller.uid, pid: delegate.caller.pid, ...describeSubject(subject), svids: svids.length }, `${API}: JWT-SVIDs issued`)
    return { svids }
  }

  return {
    SubscribeToX509SVIDs: subscribe('x509-svids', 'SubscribeToX509SVIDs'),
    SubscribeToX509Bundles: subscribe('x509-bundles', 'SubscribeToX509Bundles'),
    SubscribeToJWTBundles: subscribe('jwt-bundles', 'SubscribeToJWTBundles'),
    FetchJWTSVIDs: (call: ServerUnaryCall<JwtSvidsRequest, unknown>, callback: sendUnaryData<unknown>) => {
      fetchJwtSvids(call.request, call.getPeer()).then(response => { callback(null, response) }, (err: unknown) => { callback(asStatus(err, logger, API)) })
    }
  }
}
