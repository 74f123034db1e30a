/**
 * A STAND-IN Delegated Identity API server for the client's unit tests (not a test itself; the real agents, SPIRE's
 * and Chaperone's, are tested in test/interop and test/agent): grpc-js on a Unix socket serving
 * spiffe/delegated-identity.proto with SVIDs from the test PKI, answering as SPIRE's service.go does (map keys and
 * federates_with as `spiffe://td`, the same statuses and details), with counters of the calls it got and switches
 * to refuse, to push changes and to send malformed messages.
 */
import { generateKeyPairSync } from 'node:crypto'
import { join } from 'node:path'
import { Server, ServerCredentials, status } from '@grpc/grpc-js'
import type { sendUnaryData, ServerErrorResponse, ServerUnaryCall, ServerWritableStream } from '@grpc/grpc-js'
import { SignJWT } from 'jose'
import { createTestCa } from '../../certs-test'
import type { TestCa, TestSvid } from '../../certs-test'
import { delegatedIdentityService } from '../../spiffe/delegated-identity-proto'

export const TD = 'td-a.test'
export const FEDERATED_TD = 'td-b.test'
/** A trust domain the agent has a bundle for but the test workloads do not federate with. */
export const OTHER_TD = 'td-c.test'
export const APP_ID = `spiffe://${TD}/app`
const KID = 'stand-in-key'

interface Selector { type: string, value: string }
interface WorkloadRequest { pid: number, selectors: Selector[] }

/** What a workload gets: its SVIDs and the trust domains (names) it federates with. */
export interface StandInWorkload { svids: TestSvid[], federatesWith: string[] }

export interface DelegatedStandIn {
  /** `unix:///…/admin.sock`. */
  address: string
  ca: TestCa
  federatedCa: TestCa
  otherCa: TestCa
  /** By workload key: `pid:1234`, or the selectors as `type:value` joined by commas. Absent: no SVIDs. */
  workloads: Map<string, StandInWorkload>
  /** The X.509 bundles sent, by trust domain ID (`spiffe://td`), as concatenated DER. */
  bundles: Map<string, Buffer>
  /** When set, every call is refused with PermissionDenied and these details (SPIRE's words). */
  deny: string | undefined
  /** How many calls each RPC got (refused ones included). */
  calls: Record<'x509Svids' | 'x509Bundles' | 'jwtBundles' | 'jwtSvids', number>
  /** How many streams of each kind are open now. */
  open: () => { x509Svids: number, x509Bundles: number }
  /** Sends every open SubscribeToX509SVIDs stream its workload's state (again). */
  pushSvids: () => void
  /** Sends every open SubscribeToX509Bundles stream the bundles (again). */
  pushBundles: () => void
  /** Sends `message` as is on every open stream of `rpc`: for malformed messages. */
  sendRaw: (rpc: 'SubscribeToX509SVIDs' | 'SubscribeToX509Bundles', message: object) => void
  /** Shuts the server down; `force` drops open streams at once, like an agent that crashed. */
  close: (force?: boolean) => Promise<void>
}

export const workloadKey = (request: WorkloadRequest): string =>
  request.pid !== 0 ? `pid:${request.pid}` : request.selectors.map(s => `${s.type}:${s.value}`).join(',')

function refusal (code: status, details: string): ServerErrorResponse {
  return Object.assign(new Error(details), { code, details })
}

/** SPIRE's checks before any answer: the delegate's authorization, then the workload's naming. */
function refusalFor (standIn: DelegatedStandIn, request?: WorkloadRequest): ServerErrorResponse | undefined {
  if (standIn.deny !== undefined) return refusal(status.PERMISSION_DENIED, standIn.deny)
  if (request !== undefined && (request.selectors.length !== 0) === (request.pid !== 0)) {
    return refusal(status.INVALID_ARGUMENT, 'must provide either selectors or non-zero PID, but not both')
  }
  return undefined
}

export function x509SvidsMessage (workload: StandInWorkload | undefined): object {
  return {
    x509_svids: (workload?.svids ?? []).map(svid => {
      const url = new URL(svid.id)
      return {
        x509_svid: { id: { trust_domain: url.host, path: url.pathname }, cert_chain: svid.chain, expires_at: Math.floor(new Date(svid.leaf.validTo).getTime() / 1000), hint: 'internal' },
        x509_svid_key: svid.key.export({ type: 'pkcs8', format: 'der' })
      }
    }),
    federates_with: (workload?.federatesWith ?? []).map(td => `spiffe://${td}`)
  }
}

/** Starts a stand-in on `dir`/admin.sock; the workload `pid:4242` gets APP_ID and federates with FEDERATED_TD. */
export async function startDelegatedStandIn (dir: string): Promise<DelegatedStandIn> {
  const ca = createTestCa(TD)
  const federatedCa = createTestCa(FEDERATED_TD)
  const otherCa = createTestCa(OTHER_TD)
  const { privateKey: jwtKey, publicKey: jwtPublic } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const svidStreams = new Map<ServerWritableStream<WorkloadRequest, unknown>, string>()
  const bundleStreams = new Set<ServerWritableStream<unknown, unknown>>()
  const bundlesMessage = (): object => ({ ca_certificates: Object.fromEntries(standIn.bundles) })
  const standIn: DelegatedStandIn = {
    address: `unix://${join(dir, 'admin.sock')}`,
    ca,
    federatedCa,
    otherCa,
    workloads: new Map([['pid:4242', { svids: [ca.issueSvid(APP_ID)], federatesWith: [FEDERATED_TD] }]]),
    bundles: new Map([[`spiffe://${TD}`, ca.certDer], [`spiffe://${FEDERATED_TD}`, federatedCa.certDer], [`spiffe://${OTHER_TD}`, otherCa.certDer]]),
    deny: undefined,
    calls: { x509Svids: 0, x509Bundles: 0, jwtBundles: 0, jwtSvids: 0 },
    open: () => ({ x509Svids: svidStreams.size, x509Bundles: bundleStreams.size }),
    pushSvids: () => { for (const [stream, key] of svidStreams) stream.write(x509SvidsMessage(standIn.workloads.get(key))) },
    pushBundles: () => { for (const stream of bundleStreams) stream.write(bundlesMessage()) },
    sendRaw: (rpc, message) => {
      for (const stream of rpc === 'SubscribeToX509SVIDs' ? svidStreams.keys() : bundleStreams) stream.write(message)
    },
    close: async (force = false) => {
      if (force) server.forceShutdown()
      else await new Promise<void>(resolve => server.tryShutdown(() => resolve()))
    }
  }

  /** A stream refused before its first message, or tracked until the client cancels it. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any request type
  const keepOpen = <S extends ServerWritableStream<any, unknown>>(call: S, refused: ServerErrorResponse | undefined, first: () => object, track: (call: S) => () => void): void => {
    if (refused !== undefined) {
      // grpc-js ends a server stream with an error status when the stream emits 'error'.
      call.emit('error', refused)
      return
    }
    const untrack = track(call)
    call.on('cancelled', untrack)
    call.write(first())
  }
  const jwks = (): object => ({ bundles: { [`spiffe://${TD}`]: Buffer.from(JSON.stringify({ keys: [{ ...jwtPublic.export({ format: 'jwk' }), kid: KID, use: 'jwt-svid' }] })) } })
  const server = new Server()
  server.addService(delegatedIdentityService().service, {
    SubscribeToX509SVIDs: (call: ServerWritableStream<WorkloadRequest, unknown>) => {
      standIn.calls.x509Svids++
      const key = workloadKey(call.request)
      keepOpen(call, refusalFor(standIn, call.request), () => x509SvidsMessage(standIn.workloads.get(key)), c => {
        svidStreams.set(c, key)
        return () => svidStreams.delete(c)
      })
    },
    SubscribeToX509Bundles: (call: ServerWritableStream<unknown, unknown>) => {
      standIn.calls.x509Bundles++
      keepOpen(call, refusalFor(standIn), bundlesMessage, c => {
        bundleStreams.add(c)
        return () => bundleStreams.delete(c)
      })
    },
    SubscribeToJWTBundles: (call: ServerWritableStream<unknown, unknown>) => {
      standIn.calls.jwtBundles++
      keepOpen(call, refusalFor(standIn), jwks, () => () => {})
    },
    FetchJWTSVIDs: (call: ServerUnaryCall<WorkloadRequest & { audience: string[] }, unknown>, callback: sendUnaryData<unknown>) => {
      standIn.calls.jwtSvids++
      // SPIRE checks the audience first, before it authorizes the caller.
      if (call.request.audience.length === 0) return callback(refusal(status.INVALID_ARGUMENT, 'audience must be specified'))
      const refused = refusalFor(standIn, call.request)
      if (refused !== undefined) return callback(refused)
      const svids = standIn.workloads.get(workloadKey(call.request))?.svids ?? []
      if (svids.length === 0) return callback(refusal(status.PERMISSION_DENIED, 'no identity issued'))
      Promise.all(svids.map(async svid => {
        const url = new URL(svid.id)
        const token = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: KID, typ: 'JWT' })
          .setSubject(svid.id).setAudience(call.request.audience).setIssuedAt().setExpirationTime('5m').sign(jwtKey)
        const now = Math.floor(Date.now() / 1000)
        return { token, id: { trust_domain: url.host, path: url.pathname }, expires_at: now + 300, issued_at: now, hint: 'internal' }
      })).then(out => callback(null, { svids: out }), (err: Error) => callback(refusal(status.INTERNAL, err.message)))
    }
  })
  await new Promise<void>((resolve, reject) => server.bindAsync(standIn.address, ServerCredentials.createInsecure(), err => err === null ? resolve() : reject(err)))
  return standIn
}
