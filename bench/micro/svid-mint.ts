/**
 * Micro-benchmark: SVID minting by the agent's CA. X509-SVIDs with EC P-256 and RSA-2048, either with key generation
 * (the CA makes the workload's key pair) or certifying a caller-supplied public key; JWT-SVIDs with ES256 and RS256.
 * One mint at a time, awaited, so the rate is the inverse of one mint's latency on an otherwise idle event loop.
 */
import { generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { AgentCa } from '../../agent/ca'
import type { KeyType } from '../../agent/ca'
import { parseTrustDomain } from '../../spiffe'
import type { Rate } from '../measure'

/** As measure(), for an asynchronous operation: warm up, then timed rounds, report the median rate. */
async function measureAsync (name: string, op: () => Promise<unknown>, rounds = 5, roundMs = 500): Promise<Rate> {
  for (let i = 0; i < 20; i++) await op()
  const rates: number[] = []
  for (let round = 0; round < rounds; round++) {
    const start = performance.now()
    let count = 0
    while (performance.now() - start < roundMs) {
      await op()
      count++
    }
    rates.push(count / ((performance.now() - start) / 1000))
  }
  return { name, perSecond: [...rates].sort((a, b) => a - b)[Math.floor(rounds / 2)], rounds: rates }
}

const KEYS = { 'ec-p256': ['EC P-256', 'ES256'], 'rsa-2048': ['RSA-2048', 'RS256'] } as const

export async function benchSvidMint (): Promise<Rate[]> {
  const td = parseTrustDomain('plant.example')
  const spiffeId = td.id('/ns/prod/sa/web')
  const dataDir = mkdtempSync(join(tmpdir(), 'chaperone-bench-'))
  const rates: Rate[] = []
  try {
    for (const keyType of ['ec-p256', 'rsa-2048'] as KeyType[]) {
      const [label, alg] = KEYS[keyType]
      const ca = await AgentCa.open({ trustDomain: td, dataDir: join(dataDir, keyType), keyType, jwtKeyType: keyType })
      const publicKey = (keyType === 'ec-p256'
        ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
        : generateKeyPairSync('rsa', { modulusLength: 2048 })).publicKey
      rates.push(
        await measureAsync(`mintX509Svid, ${label}, key pair generated`, async () => await ca.mintX509Svid({ spiffeId })),
        await measureAsync(`mintX509Svid, ${label}, caller's public key`, async () => await ca.mintX509Svid({ spiffeId, publicKey })),
        await measureAsync(`mintJwtSvid, ${alg}`, async () => await ca.mintJwtSvid({ spiffeId, audience: ['billing'] }))
      )
      ca.close()
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true })
  }
  return rates
}
