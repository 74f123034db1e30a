import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { AgentCa } from '../../../agent/ca'
import { X509SvidCache } from '../../../agent/workload/svid-cache'
import type { RegistrationEntry } from '../../../agent/store'
import { parseTrustDomain } from '../../../spiffe/id'

const dir = mkdtempSync(join(tmpdir(), 'chaperone-cache-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const logger = pino({ level: 'silent' })

function entry (revision: number, extra: Partial<RegistrationEntry> = {}): RegistrationEntry {
  return {
    id: 'e1', spiffeId: 'spiffe://plant.example/api', parentId: null, selectors: [{ type: 'unix', value: 'uid:1' }], x509SvidTtl: 0, jwtSvidTtl: 0,
    dnsNames: [], hint: '', admin: false, downstream: false, storeSvid: false, federatesWith: [], expiresAt: null, revision, createdAt: 0, ...extra
  }
}

/** The real CA, counting its X509 mints. */
async function countingCa (): Promise<{ ca: AgentCa, mints: () => number }> {
  const ca = await AgentCa.open({ trustDomain: parseTrustDomain('plant.example'), dataDir: join(dir, `ca-${Math.random()}`), logger })
  let mints = 0
  const mint = ca.mintX509Svid.bind(ca)
  ca.mintX509Svid = async request => { mints++; return await mint(request) }
  return { ca, mints: () => mints }
}

void t.test('svid cache – many concurrent callers (one per open stream) share one mint, also after an entry change', async t => {
  const { ca, mints } = await countingCa()
  const cache = new X509SvidCache(ca, logger)
  t.teardown(() => { cache.close(); ca.close() })
  const first = await Promise.all(Array.from({ length: 50 }, async () => await cache.get(entry(0))))
  t.equal(mints(), 1, 'one mint for 50 concurrent callers')
  t.ok(first.every(svid => svid === first[0]))
  const changed = await Promise.all(Array.from({ length: 50 }, async () => await cache.get(entry(1, { x509SvidTtl: 600 }))))
  t.equal(mints(), 2, 'an entry update re-mints once')
  t.ok(changed.every(svid => svid === changed[0] && svid.revision === 1))
  t.ok(changed[0].expiresAt.getTime() - Date.now() <= 600_000, 'the entry\'s own TTL is used')
})

void t.test('svid cache – renewal at half-life ±10 % pushes a new SVID; forget drops it', async t => {
  const { ca } = await countingCa()
  let now = Date.now()
  const cache = new X509SvidCache(ca, logger, { clock: () => new Date(now), random: () => 0.5 })
  t.teardown(() => { cache.close(); ca.close() })
  const svid = await cache.get(entry(0, { x509SvidTtl: 100 }))
  const lifetime = svid.expiresAt.getTime() - now
  t.ok(Math.abs(svid.renewAt.getTime() - now - lifetime / 2) < 1000, 'renews at half of its lifetime')
  now = svid.renewAt.getTime() + 1
  const renewed = await cache.get(entry(0, { x509SvidTtl: 100 }))
  t.not(renewed, svid, 'past the renewal point a new SVID is minted')
  cache.forget('e1')
  t.equal(cache.size, 0)
})
