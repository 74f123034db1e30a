import t from 'tap'
import Database from 'better-sqlite3'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { RegistrationStore, formatSelector } from '../../../agent/store'
import type { AttestedAgent, RegistrationEntry } from '../../../agent/store'
import { thrown } from '../../helpers/errors'
import { TRUST_DOMAIN, openStore, tmpDataDir, writerAttestation, writerEntry } from './fixtures/store'

const ROOT = join(__dirname, '..', '..', '..')
const TS_LOADER = pathToFileURL(join(ROOT, 'node_modules', '@tapjs', 'typescript', 'dist', 'esm', 'import.mjs')).href
const WRITER = join(__dirname, 'fixtures', 'writer.ts')
const ROUNDS = 3

/**
 * Runs fixtures/writer.ts (in `mode`) until it has acknowledged `killAfter` entries (or attestations), calls
 * `whileRunning` with its pid, then kills it with SIGKILL; returns every acknowledged one as [id, n]. Lines still in
 * the pipe count: each was printed only after its write was committed.
 */
async function writeUntilKilled (dataDir: string, round: string, killAfter: number, whileRunning: (pid: number) => void, mode = 'entries'): Promise<{ acked: Array<[string, number]>, signal: unknown }> {
  const child = spawn(process.execPath, [`--import=${TS_LOADER}`, WRITER, dataDir, round, mode], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1' }
  })
  let output = ''
  let lines = 0
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', (chunk: string) => {
    output += chunk
    if (lines >= killAfter) return
    lines += chunk.split('\n').length - 1
    if (lines >= killAfter) {
      whileRunning(child.pid ?? 0)
      child.kill('SIGKILL')
    }
  })
  const [, signal] = await once(child, 'close') as [number | null, NodeJS.Signals | null]
  const complete = output.slice(0, output.lastIndexOf('\n') + 1).split('\n').filter(line => line.length > 0)
  return { acked: complete.map(line => line.split(' ')).map(([id, n]) => [id, Number(n)]), signal }
}

void t.test('durability – every acknowledged entry survives kill -9, intact, and nothing is half-written', async t => {
  const dataDir = tmpDataDir(t)
  let total = 0
  for (let round = 1; round <= ROUNDS; round++) {
    const name = `round${round}`
    const { acked, signal } = await writeUntilKilled(dataDir, name, 200 + Math.floor(Math.random() * 200), pid => {
      if (round !== 1) return
      const err = thrown(() => RegistrationStore.open({ dataDir, trustDomain: TRUST_DOMAIN }))
      t.equal(err.code, 'ERR_STORE_UNAVAILABLE', 'another process cannot open the store the writer holds')
      t.match(err.message, `is in use by another agent (pid ${pid})`)
    })
    t.equal(signal, 'SIGKILL', `${name}: the writer was killed mid-stream`)
    t.ok(acked.length >= 200, `${name}: ${acked.length} entries acknowledged before the kill`)

    const store = openStore(t, dataDir)
    const lost = acked.filter(([id, n]) => !isIntact(store.getEntry(id), name, n))
    t.same(lost, [], `${name}: every acknowledged entry is there, every field intact`)
    const inRound = store.listEntries({ selector: `docker:label:round:${name}` })
    t.ok(inRound.length === acked.length || inRound.length === acked.length + 1,
      `${name}: ${inRound.length} stored for ${acked.length} acknowledged (at most one committed but not yet printed)`)
    const unindexed = inRound.filter(entry => !store.entriesForSelectors(entry.selectors).some(match => match.id === entry.id))
    t.same(unindexed, [], `${name}: every stored entry is found by its selectors`)
    total += inRound.length
    t.equal(store.listEntries().length, total, `${name}: no entries from nowhere`)
    t.equal(store.revision, total, `${name}: the store revision counts exactly the committed creates`)
    store.close()
    const db = new Database(join(dataDir, 'registrations.sqlite3'), { readonly: true })
    t.equal(db.pragma('integrity_check', { simple: true }), 'ok', `${name}: integrity_check is ok`)
    db.close()
  }
})

void t.test('durability – every acknowledged attestation survives kill -9, intact, and nothing is half-written', async t => {
  const dataDir = tmpDataDir(t)
  const { acked, signal } = await writeUntilKilled(dataDir, 'agents', 200 + Math.floor(Math.random() * 200), () => {}, 'agents')
  t.equal(signal, 'SIGKILL', 'the writer was killed mid-stream')
  t.ok(acked.length >= 200, `${acked.length} attestations acknowledged before the kill`)
  const store = openStore(t, dataDir)
  const lost = acked.filter(([id, n]) => !isIntactAgent(store.agents.get(id), n))
  t.same(lost, [], 'every acknowledged attestation is there, every field intact')
  const stored = store.agents.list()
  t.ok(stored.length === acked.length || stored.length === acked.length + 1,
    `${stored.length} stored for ${acked.length} acknowledged (at most one committed but not yet printed)`)
  t.same(stored.filter(agent => !isIntactAgent(agent, Number(agent.spiffeId.split('-').at(-1)))), [], 'and that one intact too')
  t.equal(store.revision, stored.length, 'the store revision counts exactly the committed attestations')
  store.close()
  const db = new Database(join(dataDir, 'registrations.sqlite3'), { readonly: true })
  t.equal(db.pragma('integrity_check', { simple: true }), 'ok', 'integrity_check is ok')
  db.close()
})

function isIntactAgent (agent: AttestedAgent | undefined, n: number): boolean {
  const expected = writerAttestation('agents', n)
  return agent !== undefined && agent.spiffeId === expected.spiffeId && agent.serialNumber === expected.serialNumber.toString() &&
    agent.expiresAt === expected.expiresAt && agent.canReattest === expected.canReattest && !agent.banned &&
    agent.selectors.map(formatSelector).join(' ') === `x509pop:serialnumber:${n.toString(16)} x509pop:subject:cn:agents-${n}`
}

function isIntact (entry: RegistrationEntry | undefined, round: string, n: number): boolean {
  const expected = writerEntry(round, n)
  return entry !== undefined && entry.spiffeId === expected.spiffeId && entry.hint === expected.hint &&
    entry.x509SvidTtl === expected.x509SvidTtl && entry.dnsNames[0] === expected.dnsNames?.[0] &&
    entry.selectors.map(formatSelector).join(' ') === `docker:label:round:${round} unix:uid:${n}`
}
