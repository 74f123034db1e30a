/**
 * A stand-in Workload API server for tests (not a test itself: tap runs only *.test.ts): grpc-js on a Unix socket,
 * serving spiffe/workload.proto with SVIDs from the test PKI, refusing requests without the `workload.spiffe.io`
 * header as the standard requires, and optionally the standard gRPC health service.
 */
import { generateKeyPairSync } from 'node:crypto'
import { join } from 'node:path'
import { Server, ServerCredentials, status } from '@grpc/grpc-js'
import type { ServerUnaryCall, ServerWritableStream, sendUnaryData, ServerErrorResponse } from '@grpc/grpc-js'
import { HealthImplementation } from 'grpc-health-check'
import type { ServingStatus } from 'grpc-health-check'
import { SignJWT } from 'jose'
import { createTestCa } from '../../certs-test'
import type { TestCa, TestSvid } from '../../certs-test'
import { JwtBundle } from '../../spiffe/jwt-bundle'
import { validateJwtSvid } from '../../spiffe/jwt-svid'
import { parseTrustDomain } from '../../spiffe/id'
import { WORKLOAD_API_HEADER, workloadApiService } from '../../spiffe/workload-proto'
import { toStruct } from '../../spiffe/workload-struct'

export const TD = 'td-a.test'
export const FEDERATED_TD = 'td-b.test'
export const WORKLOAD_ID = `spiffe://${TD}/app`
const KID = 'stand-in-key'

export interface StandIn {
  /** `unix:///…` address of the socket. */
  address: string
  ca: TestCa
  federatedCa: TestCa
  /** The SVID most recently issued. */
  svid: TestSvid
  jwtBundle: JwtBundle
  /** When set, every Workload API call is refused with PERMISSION_DENIED, like an agent with no entry for the caller. */
  deny: boolean
  /** How many calls came without the header. */
  headerless: number
  /** How many FetchX509SVID streams were asked for (refused ones included). */
  x509Calls: number
  /**
   * Issues a new SVID and sends it to every open FetchX509SVID stream (a rotation); with `reissue` false, sends the
   * current state again unchanged.
   */
  rotate: (reissue?: boolean) => void
  /** Shuts the server down; `force` drops open streams at once, like an agent that crashed. */
  close: (force?: boolean) => Promise<void>
}

function refusal (code: status, details: string): ServerErrorResponse {
  return Object.assign(new Error(details), { code, details })
}

/**
 * Starts a stand-in on `dir`/workload.sock; `health` adds the gRPC health service reporting that status for the
 * server (''); `jwtTtlSeconds` sets the lifetime of the JWT-SVIDs it signs (5 minutes by default).
 */
export async function startStandIn (dir: string, options: { health?: ServingStatus, jwtTtlSeconds?: number } = {}): Promise<StandIn> {
  const ca = createTestCa(TD)
  const federatedCa = createTestCa(FEDERATED_TD)
  const { privateKey: jwtKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const jwtBundle = new JwtBundle(parseTrustDomain(TD))
  jwtBundle.addKey(KID, publicKey.export({ format: 'jwk' }))
  const streams = new Set<ServerWritableStream<unknown, unknown>>()
  const standIn: StandIn = {
    address: `unix://${join(dir, 'workload.sock')}`,
    ca,
    federatedCa,
    svid: ca.issueSvid(WORKLOAD_ID),
    jwtBundle,
    deny: false,
    headerless: 0,
    x509Calls: 0,
    rotate: (reissue = true) => {
      if (reissue) standIn.svid = ca.issueSvid(WORKLOAD_ID)
      for (const stream of streams) stream.write(x509Response())
    },
    close: async (force = false) => {
      if (force) server.forceShutdown()
      else await new Promise<void>(resolve => server.tryShutdown(() => resolve()))
    }
  }

  const x509Response = (): object => ({
    svids: [{
      spiffe_id: WORKLOAD_ID,
      x509_svid: Buffer.concat(standIn.svid.chain),
      x509_svid_key: standIn.svid.key.export({ type: 'pkcs8', format: 'der' }),
      bundle: ca.certDer,
      hint: 'internal'
    }],
    federated_bundles: { [`spiffe://${FEDERATED_TD}`]: federatedCa.certDer }
  })

  const unary = <Req> (answer: (request: Req) => Promise<object>) =>
    (call: ServerUnaryCall<Req, unknown>, callback: sendUnaryData<unknown>): void => {
      const refused = check(call.metadata.get(WORKLOAD_API_HEADER))
      if (refused !== undefined) return callback(refused)
      answer(call.request).then(response => callback(null, response), (err: Error) => callback(refusal(status.INVALID_ARGUMENT, err.message)))
    }
  const stream = (first: () => object, keepOpen: boolean) => (call: ServerWritableStream<unknown, unknown>): void => {
    const refused = check(call.metadata.get(WORKLOAD_API_HEADER))
    if (refused !== undefined) {
      // grpc-js ends a server stream with an error status when the stream emits 'error'.
      call.emit('error', refused)
      return
    }
    call.write(first())
    if (!keepOpen) return
    streams.add(call)
    call.on('cancelled', () => streams.delete(call))
  }
  /** The standard's header check, then the deny switch: before any answer. */
  const check = (header: unknown[]): ServerErrorResponse | undefined => {
    if (header[0] !== 'true') {
      standIn.headerless++
      return refusal(status.INVALID_ARGUMENT, 'security header missing from request')
    }
    if (standIn.deny) return refusal(status.PERMISSION_DENIED, 'no identity issued')
    return undefined
  }

  const jwks = (): object => ({ bundles: { [`spiffe://${TD}`]: Buffer.from(JSON.stringify(jwtBundle.toJwks())) } })
  const x509Stream = stream(x509Response, true)
  const server = new Server()
  server.addService(workloadApiService().service, {
    FetchX509SVID: (call: ServerWritableStream<unknown, unknown>) => {
      standIn.x509Calls++
      x509Stream(call)
    },
    FetchX509Bundles: stream(() => ({ bundles: { [`spiffe://${TD}`]: ca.certDer, [`spiffe://${FEDERATED_TD}`]: federatedCa.certDer } }), true),
    FetchJWTBundles: stream(jwks, true),
    FetchJWTSVID: unary(async (request: { audience: string[], spiffe_id: string }) => {
      if (request.audience.length === 0) throw new Error('audience must be specified')
      const token = await new SignJWT({})
        .setProtectedHeader({ alg: 'ES256', kid: KID, typ: 'JWT' })
        .setSubject(WORKLOAD_ID).setAudience(request.audience).setIssuedAt().setExpirationTime(`${options.jwtTtlSeconds ?? 300}s`)
        .sign(jwtKey)
      return { svids: [{ spiffe_id: WORKLOAD_ID, svid: token, hint: 'internal' }] }
    }),
    ValidateJWTSVID: unary(async (request: { audience: string, svid: string }) => {
      const svid = await validateJwtSvid(request.svid, jwtBundle, request.audience)
      return { spiffe_id: svid.id.toString(), claims: toStruct(svid.claims) }
    })
  })
  if (options.health !== undefined) new HealthImplementation({ '': options.health }).addToServer(server)
  await new Promise<void>((resolve, reject) => server.bindAsync(standIn.address, ServerCredentials.createInsecure(), err => err === null ? resolve() : reject(err)))
  return standIn
}
