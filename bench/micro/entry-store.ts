/**
 * Micro-benchmark: the registration store on a real SQLite file in a temporary directory. Creates and updates are
 * each their own durable transaction (WAL, synchronous=FULL: one fsync per write), so they measure the disk as much
 * as the code; the lookup is the Workload API's question per attested caller, among 1,000 entries.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { RegistrationStore, parseSelector } from '../../agent/store'
import type { EntryInput, RegistrationEntry } from '../../agent/store'
import { parseTrustDomain } from '../../spiffe/id'
import { measure } from '../measure'
import type { Rate } from '../measure'

const ENTRIES = 1000

/** The n-th distinct entry: its own uid, a gid shared with a few others, so lookups meet partial matches too. */
function entry (n: number): EntryInput {
  return { spiffeId: `spiffe://bench.example/workload-${n}`, selectors: [`unix:uid:${n}`, `unix:gid:${n % 50}`] }
}

/** What the unix attestor reports for the caller with uid n: more selectors than any entry needs. */
function workloadSelectors (n: number): ReturnType<typeof parseSelector>[] {
  return [`unix:uid:${n}`, `unix:gid:${n % 50}`, 'unix:user:app', 'unix:path:/usr/local/bin/app', `unix:sha256:${'ab'.repeat(32)}`]
    .map(parseSelector)
}

export function benchEntryStore (): Rate[] {
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-bench-store-'))
  const store = RegistrationStore.open({
    dataDir: join(dir, 'data'),
    trustDomain: parseTrustDomain('bench.example'),
    logger: pino({ level: 'silent' })
  })
  try {
    const seeded: RegistrationEntry[] = []
    for (let n = 0; n < ENTRIES; n++) seeded.push(store.createEntry(entry(n)))
    const callers = seeded.map((_, n) => workloadSelectors(n))
    // measure() restarts its counter every round, so unique entries need a counter of their own.
    let next = ENTRIES
    let hint = 0
    return [
      measure(`entry store: entriesForSelectors among ${ENTRIES} entries`, i => store.entriesForSelectors(callers[i % ENTRIES])),
      measure('entry store: createEntry (own transaction, synchronous=FULL)', () => store.createEntry(entry(next++))),
      measure('entry store: updateEntry (own transaction, synchronous=FULL)',
        i => store.updateEntry(seeded[i % ENTRIES].id, { hint: String(hint++) }))
    ]
  } finally {
    store.close()
    rmSync(dir, { recursive: true, force: true })
  }
}
