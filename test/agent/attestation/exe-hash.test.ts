import t from 'tap'
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { ExeHashCache } from '../../../agent/attestation/exe-hash'

const dir = mkdtempSync(join(tmpdir(), 'chaperone-hash-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex')

void t.test('exe hash – a file is hashed once until it changes', async t => {
  const file = join(dir, 'app')
  writeFileSync(file, 'version 1')
  const cache = new ExeHashCache()
  t.same(await cache.hash(file), { sha256: sha256('version 1') })
  t.same(await cache.hash(file), { sha256: sha256('version 1') })
  t.equal(cache.computed, 1, 'the second ask is answered from the cache')

  writeFileSync(file, 'version 2, longer')
  utimesSync(file, new Date(), new Date(Date.now() + 5000))
  t.same(await cache.hash(file), { sha256: sha256('version 2, longer') }, 'new content and mtime: new hash')
  t.equal(cache.computed, 2)
})

void t.test('exe hash – rewriting a file and setting its size and mtime back still gives the new hash', async t => {
  const file = join(dir, 'sneaky')
  writeFileSync(file, 'good')
  const cache = new ExeHashCache()
  t.same(await cache.hash(file), { sha256: sha256('good') })
  const { atime, mtime } = statSync(file)
  await sleep(20) // lets ctime move on even on coarse-clocked file systems
  writeFileSync(file, 'evil')
  utimesSync(file, atime, mtime)
  t.same(await cache.hash(file), { sha256: sha256('evil') }, 'ctime is part of the key; mtime alone can be forged')
})

void t.test('exe hash – the cache is bounded and a file above the limit is not hashed', async t => {
  const cache = new ExeHashCache({ capacity: 2, maxBytes: 10 })
  for (const name of ['a', 'b', 'c']) {
    writeFileSync(join(dir, name), name)
    await cache.hash(join(dir, name))
  }
  t.equal(cache.size, 2, 'the least recently used entry was dropped')
  writeFileSync(join(dir, 'big'), 'x'.repeat(11))
  t.same(await cache.hash(join(dir, 'big')), { tooLarge: 11 })
  t.equal(cache.computed, 3, 'the large file was not read')
  await t.rejects(cache.hash(join(dir, 'missing')), { code: 'ENOENT' })
})
