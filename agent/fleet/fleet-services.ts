/**
 * The calls devices make on the fleet's port after AttestAgent, answered as a SPIRE server answers them
 * (pkg/server/api/{entry,svid,bundle}/v1/service.go), for the caller fleet-authorization.ts let in:
 * - Entry/GetAuthorizedEntries: the entries authorized to the calling agent (its own, through its node aliases, and
 *   their descendants: RegistrationStore.entriesAuthorizedTo), with SPIRE's output mask;
 * - SVID/BatchNewX509SVID: an X509-SVID per {entry_id, csr} for entries authorized to the agent, each item with its
 *   own status in SPIRE's words;
 * - SVID/NewDownstreamX509CA: a CA for the downstream caller's CSR (AgentCa.signDownstreamCa: SPIRE's template and
 *   lifetime cap), with the trust domain's roots;
 * - SVID/NewJWTSVID: a JWT-SVID for an entry authorized to the agent, for the audience asked, at the entry's JWT TTL;
 * - Entry/SyncAuthorizedEntries (sync-authorized-entries.ts), and Agent/RenewAgent, refused AGENT_MUST_REATTEST as
 *   SPIRE refuses it to an agent that can attest again, which every agent attested here can (x509pop): a SPIRE agent
 *   then attests again, as it does under a SPIRE server;
 * - Bundle/GetBundle: our own bundle as on the local socket; Bundle/PublishJWTAuthority: the downstream caller's
 *   JWT key appended to it (so every device's bundle holds it), answered with every JWT authority;
 *   Bundle/GetFederatedBundle: a federated bundle, as on the local socket.
 */
import { status } from '@grpc/grpc-js'
import type { sendUnaryData, ServerUnaryCall, UntypedServiceImplementation } from '@grpc/grpc-js'
import type { Logger } from 'pino'
import type { AgentCa } from '../ca'
import { CaError } from '../ca'
import type { RegistrationEntry, RegistrationStore } from '../store'
import { AuthorityError } from '../store'
import { OK_STATUS, SpireApiError } from '../spire-api/api-error'
import { federatedBundleMessage, ownBundleMessage } from '../spire-api/bundle-service'
import { entryToMessage, maskEntry } from '../spire-api/entry-mapping'
import type { EntryContext } from '../spire-api/entry-mapping'
import type { BundleMaskMessage, EntryMaskMessage, JwtKeyMessage, StatusMessage } from '../spire-api/messages'
import { maskBundle } from '../spire-api/bundle-mapping'
import { serviceCalls } from '../spire-api/service-calls'
import { jwtSvidToProto, x509SvidToProto } from '../spire-api/svid-mapping'
import type { CallerLog } from '../spire-api/service-calls'
import { parseSpiffeId } from '../../spiffe/id'
import type { FleetAuthorization, FleetGrant } from './fleet-authorization'
import { FLEET_METHODS } from './fleet-authorization'
import { permissionDenied } from './permission-denied'
import { syncAuthorizedEntries } from './sync-authorized-entries'

export interface FleetServiceDeps {
  readonly store: RegistrationStore
  readonly ca: AgentCa
  readonly authorization: Pick<FleetAuthorization, 'authorize'>
  readonly callers: CallerLog
  readonly logger: Logger
}

interface X509SvidItem { status: StatusMessage, svid: object | null }

export interface FleetServices {
  readonly agent: UntypedServiceImplementation
  readonly entry: UntypedServiceImplementation
  readonly svid: UntypedServiceImplementation
  readonly bundle: UntypedServiceImplementation
}

export function fleetServices (deps: FleetServiceDeps): FleetServices {
  const { store, ca, authorization } = deps
  const { unary, unaryAsync, logChanges } = serviceCalls(deps.logger, deps.callers)
  const ctx: EntryContext = { trustDomain: ca.trustDomain.name, agentId: store.agentId }
  const grantOf = <K extends FleetGrant['as']>(method: string, peer: string, kind: K): Extract<FleetGrant, { as: K }> => {
    const grant = authorization.authorize(method, peer)
    if (grant.as !== kind) throw new SpireApiError(status.INTERNAL, `caller is not ${kind === 'agent' ? 'an agent' : 'a downstream workload'}`)
    return grant as Extract<FleetGrant, { as: K }>
  }
  const authorizedEntries = (peer: string, method: string): RegistrationEntry[] => {
    const { agent } = grantOf(method, peer, 'agent')
    return store.entriesAuthorizedTo(agent.spiffeId, agent.selectors)
  }

  const agent = {
    RenewAgent: (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
      try {
        grantOf(FLEET_METHODS.renewAgent, call.getPeer(), 'agent')
        const denial = permissionDenied('agent must reattest instead of renew', 'AGENT_MUST_REATTEST')
        callback(Object.assign(new Error(denial.details), denial))
      } catch (err) {
        callback(err instanceof SpireApiError ? err.toServiceError() : err as Error)
      }
    }
  }

  const entry = {
    GetAuthorizedEntries: unary('GetAuthorizedEntries', (request: { output_mask: EntryMaskMessage | null }, call) => ({
      entries: authorizedEntries(call.getPeer(), FLEET_METHODS.getAuthorizedEntries).map(e => maskEntry(entryToMessage(e, ctx), request.output_mask))
    })),
    SyncAuthorizedEntries: syncAuthorizedEntries({ ctx, entriesFor: peer => authorizedEntries(peer, FLEET_METHODS.syncAuthorizedEntries) })
  }

  const svid = {
    BatchNewX509SVID: unaryAsync('BatchNewX509SVID', async (request: { params: Array<{ entry_id: string, csr: Buffer }> }, call) => {
      if (request.params.length === 0) throw SpireApiError.invalid('missing parameters')
      const byId = new Map(authorizedEntries(call.getPeer(), FLEET_METHODS.batchNewX509Svid).map(e => [e.id, e]))
      const results = await Promise.all(request.params.map(async (param): Promise<X509SvidItem> => {
        const item = byId.get(param.entry_id)
        if (param.entry_id === '') return failure(status.INVALID_ARGUMENT, 'missing entry ID')
        if (param.csr.length === 0) return failure(status.INVALID_ARGUMENT, 'missing CSR')
        if (item === undefined) return failure(status.NOT_FOUND, 'entry not found or not authorized')
        try {
          const minted = await ca.mintX509SvidFromCsr(param.csr, { spiffeId: parseSpiffeId(item.spiffeId), ttlSeconds: item.x509SvidTtl > 0 ? item.x509SvidTtl : undefined, dnsNames: [...item.dnsNames] })
          return { status: OK_STATUS, svid: x509SvidToProto(item.spiffeId, minted, item.hint) }
        } catch (err) {
          if (err instanceof CaError && err.code === 'ERR_CA_REQUEST_INVALID') return failure(status.INVALID_ARGUMENT, err.message)
          deps.logger.error({ err, entryId: item.id }, 'fleet: failed to sign an X509-SVID')
          return failure(status.INTERNAL, 'failed to sign X509-SVID')
        }
      }))
      logChanges('BatchNewX509SVID', call, 'svids', results.map((r, i) => ({ id: request.params[i].entry_id, code: r.status.code })))
      return { results }
    }),
    NewJWTSVID: unaryAsync('NewJWTSVID', async (request: { entry_id: string, audience: string[] }, call) => {
      const item = authorizedEntries(call.getPeer(), FLEET_METHODS.newJwtSvid).find(e => e.id === request.entry_id)
      if (item === undefined) throw new SpireApiError(status.NOT_FOUND, 'entry not found or not authorized')
      if (request.audience.length === 0) throw SpireApiError.invalid('at least one audience is required')
      const minted = await ca.mintJwtSvid({ spiffeId: parseSpiffeId(item.spiffeId), audience: request.audience, ttlSeconds: item.jwtSvidTtl > 0 ? item.jwtSvidTtl : undefined })
      return { svid: jwtSvidToProto(item.spiffeId, minted, item.hint) }
    }),
    NewDownstreamX509CA: unaryAsync('NewDownstreamX509CA', async (request: { csr: Buffer, preferred_ttl: number }, call) => {
      const grant = grantOf(FLEET_METHODS.newDownstreamX509Ca, call.getPeer(), 'downstream')
      try {
        const signed = await ca.signDownstreamCa(request.csr, request.preferred_ttl)
        deps.logger.info({ caller: grant.spiffeId, expiresAt: signed.expiresAt.toISOString() }, 'fleet: signed a downstream X.509 CA')
        return { ca_cert_chain: signed.chain, x509_authorities: signed.roots }
      } catch (err) {
        if (err instanceof CaError && err.code === 'ERR_CA_REQUEST_INVALID') throw SpireApiError.invalid(err.message)
        throw err
      }
    })
  }

  const bundle = {
    GetFederatedBundle: unary('GetFederatedBundle', (request: { trust_domain: string, output_mask: BundleMaskMessage | null }, call) => {
      grantOf(FLEET_METHODS.getFederatedBundle, call.getPeer(), 'agent')
      return federatedBundleMessage(store, ctx.trustDomain, request)
    }),
    GetBundle: unary('GetBundle', (request: { output_mask: BundleMaskMessage | null }) => maskBundle(ownBundleMessage(store, ca), request.output_mask)),
    PublishJWTAuthority: unary('PublishJWTAuthority', (request: { jwt_authority: JwtKeyMessage | null }, call) => {
      const grant = grantOf(FLEET_METHODS.publishJwtAuthority, call.getPeer(), 'downstream')
      const key = request.jwt_authority
      if (key === null) throw SpireApiError.invalid('missing JWT authority')
      try {
        store.appendAuthorities({ jwt: [{ keyId: key.key_id, publicKey: key.public_key, expiresAt: key.expires_at }] }, ca.bundle())
      } catch (err) {
        if (err instanceof AuthorityError) throw SpireApiError.invalid(`invalid JWT authority: ${err.message}`)
        throw err
      }
      logChanges('PublishJWTAuthority', call, 'authorities', [{ id: `jwt ${key.key_id} of ${grant.spiffeId}`, code: status.OK }])
      return { jwt_authorities: ownBundleMessage(store, ca).jwt_authorities }
    })
  }
  return { agent, entry, svid, bundle }
}

function failure (code: status, message: string): X509SvidItem {
  return { status: { code, message }, svid: null }
}
