/**
 * SPIRE's server Bundle service (spire.api.server.bundle.v1.Bundle): our own trust domain's bundle is the CA's with
 * the authorities appended to it (GetBundle, AppendBundle: the store keeps those, merged as SPIRE's datastore merges
 * them), the federated ones are the registration store's (Count, List, Get, and the Batch calls, one item at a time
 * in bundle-writes.ts); each change is logged with its caller. Federated bundles set here reach the workloads whose
 * entries federate with them, and appended authorities every workload, through the Workload API, as those set with
 * `chaperone bundle set` or `append` do. PublishJWTAuthority answers UNIMPLEMENTED: it is for downstream servers.
 */
import { status } from '@grpc/grpc-js'
import type { UntypedServiceImplementation } from '@grpc/grpc-js'
import type { AgentCa } from '../ca'
import { AuthorityError, authorityName } from '../store'
import type { AppendResult } from '../store'
import { SpireApiError } from './api-error'
import type { CallerRegistry } from './callers'
import { bundleToMessage, maskBundle } from './bundle-mapping'
import { createFederatedBundle, deleteFederatedBundle, setFederatedBundle, updateFederatedBundle } from './bundle-writes'
import type { BundleWriteDeps } from './bundle-writes'
import { keyedPage } from './keyed-paging'
import type { AppendBundleRequest, BundleDeleteMode, BundleMaskMessage, BundleMessage, BundleResult } from './messages'
import { serviceCalls, unimplemented } from './service-calls'
import { trustDomainName } from './spire-id'

export interface BundleServiceDeps extends BundleWriteDeps {
  readonly ca: AgentCa
  readonly callers: CallerRegistry
}

const SERVICE = 'spire.api.server.bundle.v1.Bundle'
const DELETE_MODES: readonly BundleDeleteMode[] = ['RESTRICT', 'DELETE', 'DISSOCIATE']

interface ListRequest { output_mask: BundleMaskMessage | null, page_size: number, page_token: string }
interface BatchRequest { bundle: BundleMessage[], output_mask: BundleMaskMessage | null }

/** One bundle of the walk ListFederatedBundles pages: ours first, as SPIRE's is its datastore's first row, then by name. */
interface Listed { readonly name: string, readonly own: boolean }

/** GetFederatedBundle's answer (SPIRE's words for a bad or own trust domain, NOT_FOUND for one not held). */
export function federatedBundleMessage (store: BundleWriteDeps['store'], ownTrustDomain: string, request: { trust_domain: string, output_mask: BundleMaskMessage | null }): BundleMessage {
  const name = SpireApiError.within('trust domain argument is not valid', () => trustDomainName(request.trust_domain))
  if (name === ownTrustDomain) throw SpireApiError.invalid('getting a federated bundle for the server\'s own trust domain is not allowed')
  return maskBundle(bundleToMessage((store.findFederatedBundle(name) ?? notFound()).bundle), request.output_mask)
}

export function bundleHandlers (deps: BundleServiceDeps): UntypedServiceImplementation {
  const { store, ctx, ca } = deps
  const { unary, logChanges } = serviceCalls(deps.logger, deps.callers)
  const federated = (name: string): BundleMessage => bundleToMessage((store.findFederatedBundle(name) ?? notFound()).bundle)
  const own = (mask: BundleMaskMessage | null): BundleMessage => maskBundle(ownBundleMessage(store, ca), mask)
  const batch = (method: string, write: (bundle: BundleMessage, request: BatchRequest) => BundleResult) =>
    unary(method, (request: BatchRequest, call) => {
      const results = request.bundle.map(bundle => write(bundle, request))
      logChanges(method, call, 'bundles', results.map((r, i) => ({ id: request.bundle[i].trust_domain, code: r.status.code })))
      return { results }
    })

  return {
    CountBundles: unary('CountBundles', () => ({ count: 1 + store.listFederatedBundles().length })),
    GetBundle: unary('GetBundle', (request: { output_mask: BundleMaskMessage | null }) => own(request.output_mask)),
    AppendBundle: unary('AppendBundle', (request: AppendBundleRequest, call) => {
      const result = appending(() => store.appendAuthorities({
        x509: request.x509_authorities.map(authority => authority.asn1),
        jwt: request.jwt_authorities.map(key => ({ keyId: key.key_id, publicKey: key.public_key, expiresAt: key.expires_at }))
      }, ca.bundle()))
      logChanges('AppendBundle', call, 'authorities', [
        ...result.added.map(a => ({ id: authorityName(a), code: status.OK })),
        ...result.present.map(a => ({ id: authorityName(a), code: status.ALREADY_EXISTS }))
      ])
      return own(request.output_mask)
    }),
    PublishJWTAuthority: unary('PublishJWTAuthority', () => { throw unimplemented(SERVICE, 'PublishJWTAuthority', 'it is for downstream SPIRE servers') }),
    ListFederatedBundles: unary('ListFederatedBundles', (request: ListRequest) => {
      const walk: Listed[] = [{ name: ctx.trustDomain, own: true }, ...store.listFederatedBundles().map(held => ({ name: held.trustDomain.name, own: false }))]
      const page = keyedPage(walk, request.page_size, request.page_token, {
        keyOf: item => item.name,
        // A token names our own trust domain (everything federated follows) or a federated one (those after it).
        follows: (item, token) => !item.own && (token === ctx.trustDomain || item.name > token)
      })
      return { bundles: page.items.filter(item => !item.own).map(item => maskBundle(federated(item.name), request.output_mask)), next_page_token: page.nextPageToken }
    }),
    GetFederatedBundle: unary('GetFederatedBundle', (request: { trust_domain: string, output_mask: BundleMaskMessage | null }) => federatedBundleMessage(store, ctx.trustDomain, request)),
    BatchCreateFederatedBundle: batch('BatchCreateFederatedBundle', (bundle, request) => createFederatedBundle(deps, bundle, request.output_mask)),
    BatchUpdateFederatedBundle: batch('BatchUpdateFederatedBundle', (bundle, request) =>
      updateFederatedBundle(deps, bundle, (request as BatchRequest & { input_mask: BundleMaskMessage | null }).input_mask, request.output_mask)),
    BatchSetFederatedBundle: batch('BatchSetFederatedBundle', (bundle, request) => setFederatedBundle(deps, bundle, request.output_mask)),
    BatchDeleteFederatedBundle: unary('BatchDeleteFederatedBundle', (request: { trust_domains: string[], mode: BundleDeleteMode | number }, call) => {
      if (!DELETE_MODES.includes(request.mode as BundleDeleteMode)) throw SpireApiError.invalid(`failed to parse deletion mode: unhandled delete mode "${String(request.mode)}"`)
      const results = request.trust_domains.map(td => deleteFederatedBundle(deps, td, request.mode as BundleDeleteMode))
      logChanges('BatchDeleteFederatedBundle', call, 'bundles', results.map(r => ({ id: r.trust_domain, code: r.status.code })))
      return { results }
    })
  }
}

/** An append's work; the store's refusal of what was sent becomes INVALID_ARGUMENT with its message (SPIRE's words). */
function appending (work: () => AppendResult): AppendResult {
  try {
    return work()
  } catch (err) {
    if (err instanceof AuthorityError) throw SpireApiError.invalid(err.message)
    throw err
  }
}

function notFound (): never {
  throw new SpireApiError(status.NOT_FOUND, 'bundle not found')
}

/** Our own trust domain's bundle as GetBundle answers it: the CA's, with the authorities appended to it. */
export function ownBundleMessage (store: BundleWriteDeps['store'], ca: AgentCa): BundleMessage {
  // A key ID names one key of the bundle; the CA's keys win over appended ones, as they do in the bundle.
  const expiries = new Map([
    ...store.appendedAuthorities().authorities.flatMap(a => a.kind === 'jwt' ? [[a.keyId, a.expiresAt] as const] : []),
    ...ca.status().jwt.map(key => [key.kid, Math.floor(key.notAfter.getTime() / 1000)] as const)
  ])
  return bundleToMessage(store.ownBundle(ca.bundle()), kid => expiries.get(kid) ?? 0)
}
