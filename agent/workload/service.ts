/**
 * The SPIFFE Workload API's handlers (SPIFFE_Workload_API.md): every call is identified by the kernel through the
 * connection it arrived on, never by anything it sends. Streams are handed to the StreamHub.
 */
import { status } from '@grpc/grpc-js'
import type { ServerUnaryCall, ServerWritableStream, UntypedServiceImplementation, sendUnaryData } from '@grpc/grpc-js'
import { BundleSet } from '../../spiffe/bundle-set'
import { ChaperoneError } from '../../spiffe/errors'
import { parseSpiffeId } from '../../spiffe/id'
import { validateJwtSvid } from '../../spiffe/jwt-svid'
import type { AgentCa } from '../ca'
import { checkSecurityHeader, entriesOf, identifyCaller } from './caller'
import type { CallerDeps } from './caller'
import { uniqueHints } from './messages'
import { toStruct } from '../../spiffe/workload-struct'
import type { StreamHub } from './stream-hub'
import { federatedBundlesOf } from './federation'
import { NO_IDENTITY, asStatus, endStream, statusError } from './status-error'

export interface WorkloadServiceDeps extends CallerDeps {
  readonly ca: AgentCa
  readonly hub: StreamHub
}

const API = 'workload API'

type Unary<Req, Res> = (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void
type Streaming = (call: ServerWritableStream<unknown, unknown>) => void

export function workloadHandlers (deps: WorkloadServiceDeps): UntypedServiceImplementation {
  const unary = <Req, Res>(work: (call: ServerUnaryCall<Req, Res>) => Promise<Res>): Unary<Req, Res> => (call, callback) => {
    work(call).then(result => callback(null, result), (err: unknown) => callback(asStatus(err, deps.logger, API)))
  }
  const streaming = (kind: 'x509-svid' | 'x509-bundles' | 'jwt-bundles'): Streaming => call => {
    identifyCaller(deps, call.getPeer(), call.metadata).then(caller => {
      deps.hub.open(kind, caller, entriesOf(deps, caller), call)
    }).catch((err: unknown) => { endStream(call, asStatus(err, deps.logger, API)) })
  }

  return {
    FetchX509SVID: streaming('x509-svid'),
    FetchX509Bundles: streaming('x509-bundles'),
    FetchJWTBundles: streaming('jwt-bundles'),

    FetchJWTSVID: unary(async (call: ServerUnaryCall<{ audience: string[], spiffe_id: string }, unknown>) => {
      const caller = await identifyCaller(deps, call.getPeer(), call.metadata)
      const { audience, spiffe_id: wanted } = call.request
      if (audience.length === 0 || audience.some(a => a === '')) throw statusError(status.INVALID_ARGUMENT, 'audience must be specified')
      let entries = entriesOf(deps, caller)
      if (wanted !== '') {
        entries = entries.filter(entry => entry.spiffeId === wanted)
        if (entries.length === 0) throw NO_IDENTITY()
      }
      const svids = []
      for (const entry of uniqueHints(entries, deps.logger)) {
        const { token } = await deps.ca.mintJwtSvid({
          spiffeId: parseSpiffeId(entry.spiffeId), audience, ...(entry.jwtSvidTtl > 0 ? { ttlSeconds: entry.jwtSvidTtl } : {})
        })
        svids.push({ spiffe_id: entry.spiffeId, svid: token, hint: entry.hint })
      }
      return { svids }
    }),

    // Any local process may validate a token of our trust domain; it needs no identity of its own. As SPIRE's agent
    // does, it validates against the bundles the caller would be given: ours (the CA's keys and the appended ones),
    // plus the federated bundles of the trust domains its entries federate with (so a token of another trust domain
    // needs such an entry).
    ValidateJWTSVID: unary(async (call: ServerUnaryCall<{ audience: string, svid: string }, unknown>) => {
      checkSecurityHeader(call.metadata)
      const { audience, svid } = call.request
      if (audience === '') throw statusError(status.INVALID_ARGUMENT, 'audience must be specified')
      if (svid === '') throw statusError(status.INVALID_ARGUMENT, 'svid must be specified')
      const caller = await identifyCaller(deps, call.getPeer(), call.metadata)
      const bundles = new BundleSet([deps.store.ownBundle(deps.ca.bundle()), ...federatedBundlesOf(deps.store, deps.store.entriesForSelectors(caller.selectors))])
      try {
        const validated = await validateJwtSvid(svid, bundles, audience)
        return { spiffe_id: validated.id.toString(), claims: toStruct(validated.claims) }
      } catch (err) {
        if (err instanceof ChaperoneError) throw statusError(status.INVALID_ARGUMENT, err.message)
        throw err
      }
    })
    // FetchWITSVID and FetchWITBundles (the optional WIT profile) are not in our .proto: grpc-js answers UNIMPLEMENTED.
  }
}
