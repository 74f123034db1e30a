/**
 * Who may call what on the fleet's port, as SPIRE's server authorizes its TCP callers (pkg/server/authpolicy/
 * policy_data.json, pkg/server/endpoints/middleware.go AgentAuthorizer, pkg/server/api/middleware/authorization_opa.go):
 * - **anyone**: AttestAgent (the device has no X509-SVID yet) and GetBundle;
 * - **agents**: a caller whose X509-SVID names an attested agent, not banned, with the serial number of the agent
 *   SVID last issued to it, unexpired (Get/SyncAuthorizedEntries, BatchNewX509SVID, NewJWTSVID, RenewAgent,
 *   GetFederatedBundle); refused, it is told SPIRE's reason in the status details (permission-denied.ts);
 * - **downstream callers**: a caller whose X509-SVID's ID is the SPIFFE ID of an entry with `downstream`
 *   (NewDownstreamX509CA, PublishJWTAuthority).
 * Anyone else, and any other method, gets PERMISSION_DENIED "authorization denied for method <method>" (or the
 * agent check's own words, SPIRE's), counted and logged at most once per address and reason per 10 s.
 */
import { Metadata, ServerInterceptingCall, status } from '@grpc/grpc-js'
import type { ServerInterceptor } from '@grpc/grpc-js'
import { X509Certificate } from 'node:crypto'
import type { Logger } from 'pino'
import type { AttestedAgent, RegistrationEntry, RegistrationStore } from '../store'
import { statusDetails } from '../status-details'
import type { FleetCaller } from './fleet-listener'
import { isAgentDenialCode, permissionDenied } from './permission-denied'
import { FleetRefusals } from './refusals'

export const FLEET_METHODS = {
  attestAgent: '/spire.api.server.agent.v1.Agent/AttestAgent',
  getBundle: '/spire.api.server.bundle.v1.Bundle/GetBundle',
  getAuthorizedEntries: '/spire.api.server.entry.v1.Entry/GetAuthorizedEntries',
  syncAuthorizedEntries: '/spire.api.server.entry.v1.Entry/SyncAuthorizedEntries',
  batchNewX509Svid: '/spire.api.server.svid.v1.SVID/BatchNewX509SVID',
  newJwtSvid: '/spire.api.server.svid.v1.SVID/NewJWTSVID',
  renewAgent: '/spire.api.server.agent.v1.Agent/RenewAgent',
  getFederatedBundle: '/spire.api.server.bundle.v1.Bundle/GetFederatedBundle',
  newDownstreamX509Ca: '/spire.api.server.svid.v1.SVID/NewDownstreamX509CA',
  publishJwtAuthority: '/spire.api.server.bundle.v1.Bundle/PublishJWTAuthority'
} as const

const ANYONE: ReadonlySet<string> = new Set([FLEET_METHODS.attestAgent, FLEET_METHODS.getBundle])
const AGENTS: ReadonlySet<string> = new Set([
  FLEET_METHODS.getAuthorizedEntries, FLEET_METHODS.syncAuthorizedEntries, FLEET_METHODS.batchNewX509Svid, FLEET_METHODS.newJwtSvid,
  FLEET_METHODS.renewAgent, FLEET_METHODS.getFederatedBundle
])
const DOWNSTREAM: ReadonlySet<string> = new Set([FLEET_METHODS.newDownstreamX509Ca, FLEET_METHODS.publishJwtAuthority])

export interface FleetAuthorizationDeps {
  readonly callers: { caller: (peer: string) => FleetCaller | undefined }
  readonly store: Pick<RegistrationStore, 'agents' | 'listEntries'>
  readonly logger: Logger
}

/** The caller as authorized for one call. */
export type FleetGrant =
  | { readonly as: 'anyone' }
  | { readonly as: 'agent', readonly agent: AttestedAgent }
  | { readonly as: 'downstream', readonly spiffeId: string, readonly entries: readonly RegistrationEntry[] }

class Denial extends Error {
  constructor (readonly reason: string, message: string) {
    super(message)
  }
}

export class FleetAuthorization {
  readonly #deps: FleetAuthorizationDeps
  readonly refusals: FleetRefusals

  constructor (deps: FleetAuthorizationDeps) {
    this.#deps = deps
    this.refusals = new FleetRefusals(deps.logger, 'fleet: call refused')
  }

  /** A gRPC server interceptor that lets a call through once authorized, or ends it PERMISSION_DENIED. */
  interceptor (): ServerInterceptor {
    return (method, call) => new ServerInterceptingCall(call, {
      start: next => {
        next({
          onReceiveMetadata: (metadata, proceed) => {
            try {
              this.authorize(method.path, call.getPeer())
              proceed(metadata)
            } catch (err) {
              const message = (err as Error).message
              // An agent refused for its SVID learns SPIRE's reason, to attest again or stop.
              call.sendStatus(err instanceof Denial && isAgentDenialCode(err.reason)
                ? permissionDenied(message, err.reason)
                : { code: status.PERMISSION_DENIED, details: statusDetails(message), metadata: new Metadata() })
            }
          }
        })
      }
    })
  }

  /** How the caller on `peer` may call `method`; throws with SPIRE's denial otherwise. */
  authorize (method: string, peer: string): FleetGrant {
    const caller = this.#deps.callers.caller(peer)
    try {
      if (ANYONE.has(method)) return { as: 'anyone' }
      if (caller?.svid === undefined) throw new Denial('no_svid', `authorization denied for method ${method}`)
      if (AGENTS.has(method)) return this.#agent(caller.svid.id.toString(), caller.svid.chain[0])
      if (DOWNSTREAM.has(method)) return this.#downstream(method, caller.svid.id.toString())
      throw new Denial('method', `authorization denied for method ${method}`)
    } catch (err) {
      this.refusals.refused(caller?.address ?? 'unknown', err instanceof Denial ? err.reason : 'internal', { method, spiffeId: caller?.svid?.id.toString(), message: (err as Error).message })
      throw err
    }
  }

  #agent (agentId: string, leafDer: Buffer): FleetGrant {
    const leaf = new X509Certificate(leafDer)
    const check = this.#deps.store.agents.checkSvid(agentId, {
      serialNumber: BigInt(`0x${leaf.serialNumber}`),
      expiresAt: Math.floor(new Date(leaf.validTo).getTime() / 1000)
    })
    if (!check.ok) throw new Denial(check.reason, check.message)
    return { as: 'agent', agent: check.agent }
  }

  #downstream (method: string, spiffeId: string): FleetGrant {
    const entries = this.#deps.store.listEntries({ spiffeId }).filter(entry => entry.downstream)
    if (entries.length === 0) throw new Denial('not_downstream', `authorization denied for method ${method}`)
    return { as: 'downstream', spiffeId, entries }
  }
}
