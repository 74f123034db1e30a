/**
 * `chaperone api fetch x509|jwt`, `api validate-jwt` and `healthcheck`: the Workload API as a workload sees it,
 * like `spire-agent api …` and `spire-agent healthcheck` (the files --write produces match SPIRE's names).
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { X509Certificate } from 'node:crypto'
import { Client, credentials } from '@grpc/grpc-js'
import { service as healthService } from 'grpc-health-check'
import { InvalidArgumentError, Option } from 'commander'
import type { Command } from 'commander'
import { encodePem } from '../spiffe/pem'
import { WorkloadClient, workloadEndpoint, ENDPOINT_SOCKET_ENV } from '../spiffe/workload-client'
import type { X509SvidResponseParsed } from '../spiffe/workload-client'
import { workloadApiError } from '../spiffe/workload-errors'
import { collect, print } from './admin-options'

export const DEFAULT_WORKLOAD_SOCKET = 'unix:///run/chaperone/workload.sock'

interface ApiOptions { socket: string, json?: boolean }

/** Commander parser for --socket (and $SPIFFE_ENDPOINT_SOCKET): a bad address is a usage error, exit 2. */
function parseSocket (value: string): string {
  try {
    workloadEndpoint(value)
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message)
  }
  return value
}

function withApiOptions (command: Command): Command {
  return command
    .addOption(new Option('--socket <address>', 'the Workload API address: unix:///path or tcp://IP:port').env(ENDPOINT_SOCKET_ENV).default(DEFAULT_WORKLOAD_SOCKET).argParser(parseSocket))
    .option('--json', 'print JSON instead of text')
}

/** Runs `work` with a client for --socket (exit codes by error code: an invalid request is 2, see exit-codes.ts). */
async function withWorkload<T> (options: ApiOptions, work: (client: WorkloadClient) => Promise<T>): Promise<T> {
  const client = new WorkloadClient(options.socket)
  try {
    return await work(client)
  } finally {
    client.close()
  }
}

interface SvidSummary { spiffe_id: string, hint: string, not_before: string, not_after: string, trust_domain: string, federated_trust_domains: string[] }

function summarize (response: X509SvidResponseParsed): SvidSummary[] {
  return response.svids.map(svid => {
    const leaf = new X509Certificate(svid.chain[0])
    return {
      spiffe_id: svid.spiffeId,
      hint: svid.hint,
      not_before: new Date(leaf.validFrom).toISOString(),
      not_after: new Date(leaf.validTo).toISOString(),
      trust_domain: svid.bundle.trustDomain.name,
      federated_trust_domains: [...response.federatedBundles.keys()]
    }
  })
}

/** SPIRE's layout: svid.<i>.pem (chain), svid.<i>.key (PKCS#8, 0600), bundle.<i>.pem, federated_bundle.<i>.<j>.pem. */
function writeX509 (dir: string, response: X509SvidResponseParsed): string[] {
  mkdirSync(dir, { recursive: true })
  const written: string[] = []
  const write = (name: string, text: string, mode = 0o644): void => {
    const path = join(dir, name)
    // Removed first so an existing file's wider mode can't outlive the new key (writeFileSync keeps it otherwise).
    rmSync(path, { force: true })
    writeFileSync(path, text, { mode, flag: 'wx' })
    written.push(path)
  }
  const federated = [...response.federatedBundles.values()]
  response.svids.forEach((svid, i) => {
    write(`svid.${i}.pem`, encodePem('CERTIFICATE', svid.chain))
    write(`svid.${i}.key`, svid.key.export({ type: 'pkcs8', format: 'pem' }) as string, 0o600)
    write(`bundle.${i}.pem`, svid.bundle.toPem())
    federated.forEach((bundle, j) => write(`federated_bundle.${i}.${j}.pem`, bundle.toPem()))
  })
  return written
}

/** Whether the server at `address` reports SERVING for the whole server (service ''), grpc.health.v1. */
async function checkHealth (address: string, shallow: boolean): Promise<void> {
  const client = new Client(workloadEndpoint(address), credentials.createInsecure())
  try {
    const deadline = Date.now() + 5000
    if (shallow) {
      await new Promise<void>((resolve, reject) => client.waitForReady(deadline, err => err === undefined ? resolve() : reject(new Error(`cannot connect to ${address}: ${err.message}: the agent may not be running`))))
      return
    }
    const check = healthService.Check
    const response = await new Promise<{ status: string }>((resolve, reject) => {
      client.makeUnaryRequest(check.path, check.requestSerialize, check.responseDeserialize as (b: Buffer) => { status: string }, { service: '' }, { deadline }, (err, value) => {
        if (err !== null || value === undefined) reject(workloadApiError(err, address))
        else resolve(value)
      })
    })
    if (response.status !== 'SERVING') throw new Error(`the agent at ${address} is not serving (health status ${response.status})`)
  } finally {
    client.close()
  }
}

export function addApiCommands (program: Command): void {
  const api = program.command('api').description('call the Workload API as a workload does (like spire-agent api)')
  const fetch = api.command('fetch').description('fetch this process\'s SVIDs and bundles')

  withApiOptions(fetch.command('x509').description('fetch X509-SVIDs, their keys and bundles'))
    .option('--write <dir>', 'write svid.<i>.pem, svid.<i>.key (0600), bundle.<i>.pem and federated_bundle.<i>.<j>.pem')
    .action(async (options: ApiOptions & { write?: string }) => {
      const response = await withWorkload(options, client => client.fetchX509Svid())
      const written = options.write === undefined ? [] : writeX509(options.write, response)
      const svids = summarize(response)
      print(options, { svids, written }, () => [
        `received ${svids.length} SVID${svids.length === 1 ? '' : 's'}`,
        ...svids.map(svid => [
          '',
          `SPIFFE ID       : ${svid.spiffe_id}`,
          `Hint            : ${svid.hint === '' ? '-' : svid.hint}`,
          `Valid from      : ${svid.not_before}`,
          `Valid until     : ${svid.not_after}`,
          `Trust domain    : ${svid.trust_domain}`,
          ...svid.federated_trust_domains.map(td => `Federated with  : ${td}`)
        ].join('\n')),
        ...written.map(path => `wrote ${path}`),
        ''
      ].join('\n'))
    })

  withApiOptions(fetch.command('jwt').description('fetch JWT-SVIDs for an audience, and the JWT bundles'))
    .requiredOption('--audience <aud>', 'an audience the token is for (repeatable)', collect)
    .option('--spiffe-id <id>', 'only the JWT-SVID of this SPIFFE ID')
    .action(async (options: ApiOptions & { audience: string[], spiffeId?: string }) => {
      const [svids, bundles] = await withWorkload(options, async client => [await client.fetchJwtSvid(options.audience, options.spiffeId), await client.fetchJwtBundles()] as const)
      const jwks = Object.fromEntries([...bundles].map(([td, bundle]) => [td, bundle.toJwks()]))
      print(options, { svids: svids.map(s => ({ spiffe_id: s.spiffeId, hint: s.hint, token: s.token })), bundles: jwks }, () => [
        ...svids.map(s => `token(${s.spiffeId}):\n\t${s.token}`),
        ...Object.entries(jwks).map(([td, set]) => `bundle(spiffe://${td}):\n\t${JSON.stringify(set)}`),
        ''
      ].join('\n'))
    })

  withApiOptions(api.command('validate-jwt').argument('<token>').description('have the agent validate a JWT-SVID for an audience'))
    .requiredOption('--audience <aud>', 'the audience the token must be for')
    .action(async (token: string, options: ApiOptions & { audience: string }) => {
      const result = await withWorkload(options, client => client.validateJwtSvid(token, options.audience))
      print(options, { spiffe_id: result.spiffeId, claims: result.claims }, () =>
        `SVID is valid.\nSPIFFE ID : ${result.spiffeId}\nClaims    : ${JSON.stringify(result.claims)}\n`)
    })

  withApiOptions(program.command('healthcheck').description('check that the agent serves the Workload API (gRPC health): exit 0 if SERVING'))
    .option('--shallow', 'only check that the socket accepts connections')
    .action(async (options: ApiOptions & { shallow?: boolean }) => {
      await checkHealth(options.socket, options.shallow === true)
      const status = options.shallow === true ? 'REACHABLE' : 'SERVING'
      print(options, { status }, () => `agent is ${status === 'SERVING' ? 'healthy' : 'reachable'} (${options.socket})\n`)
    })
}
