/**
 * What the `api` and `healthcheck` commands do once they run: Workload API calls, SVID summaries, SPIRE's file
 * layout for --write, gRPC health. Loaded by api-commands.ts when a command runs (gRPC is not needed for --help).
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { X509Certificate } from 'node:crypto'
import { Client, credentials } from '@grpc/grpc-js'
import { service as healthService } from 'grpc-health-check'
import { encodePem } from '../spiffe/pem'
import { WorkloadClient } from '../spiffe/workload-client'
import type { X509SvidResponseParsed } from '../spiffe/workload-client'
import { workloadEndpoint } from '../spiffe/workload-endpoint'
import { workloadApiError } from '../spiffe/workload-errors'

export interface ApiOptions { socket: string, json?: boolean }

/** Runs `work` with a client for --socket (exit codes by error code: an invalid request is 2, see exit-codes.ts). */
export async function withWorkload<T> (options: ApiOptions, work: (client: WorkloadClient) => Promise<T>): Promise<T> {
  const client = new WorkloadClient(options.socket)
  try {
    return await work(client)
  } finally {
    client.close()
  }
}

interface SvidSummary { spiffe_id: string, hint: string, not_before: string, not_after: string, trust_domain: string, federated_trust_domains: string[] }

export function summarize (response: X509SvidResponseParsed): SvidSummary[] {
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
export function writeX509 (dir: string, response: X509SvidResponseParsed): string[] {
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
export async function checkHealth (address: string, shallow: boolean): Promise<void> {
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
