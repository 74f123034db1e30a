import t from 'tap'
import { spawnSync } from 'node:child_process'
import { createPublicKey } from 'node:crypto'
import { chmodSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { writeCertMatrix, type Manifest } from '../../certs-test/generate'
import { toPem } from '../../certs-test/pki'

const now = new Date('2031-06-01T12:00:00Z')

void t.test('cert generator – writes each fixture\'s PEM files and key.pem 0600, and a manifest listing every fixture', t => {
  const dir = t.testdir()
  const fixtures = writeCertMatrix(dir, now)
  for (const f of fixtures) {
    const folder = join(dir, f.name)
    const read = (file: string): string => readFileSync(join(folder, file), 'utf8')
    const expectedFiles = ['bundle-td-a.test.pem', 'bundle-td-b.test.pem', 'chain.pem', 'key.pem', 'leaf.pem']
    if (f.chain.length > 1) expectedFiles.push('intermediates.pem')
    t.same(readdirSync(folder).sort(), expectedFiles.sort(), `${f.name}: files`)
    t.equal(read('chain.pem'), toPem(f.chain), `${f.name}: chain.pem, leaf first`)
    t.equal(read('leaf.pem'), toPem(f.chain.slice(0, 1)))
    if (f.chain.length > 1) t.equal(read('intermediates.pem'), toPem(f.chain.slice(1)))
    t.equal(read('bundle-td-a.test.pem'), toPem(f.bundles['td-a.test']))
    t.equal(read('bundle-td-b.test.pem'), toPem(f.bundles['td-b.test']))
    t.equal(statSync(join(folder, 'key.pem')).mode & 0o777, 0o600, `${f.name}: key.pem is 0600`)
    t.ok(createPublicKey(read('key.pem')).equals(createPublicKey(f.key)), `${f.name}: key.pem is the leaf key`)
  }
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest
  t.equal(manifest.builtFor, now.toISOString())
  t.same(manifest.fixtures.map(e => e.name), fixtures.map(f => f.name), 'manifest lists every fixture, in order')
  for (const [i, entry] of manifest.fixtures.entries()) {
    const { description, expect } = fixtures[i]
    t.same(entry, { name: fixtures[i].name, description, expect: 'id' in expect ? expect : { code: expect.code, reason: expect.reason.source } })
  }
  t.end()
})

void t.test('cert generator – rewriting a directory leaves no file of the earlier run behind', t => {
  const dir = t.testdir()
  writeCertMatrix(dir, now)
  chmodSync(join(dir, 'expired', 'key.pem'), 0o644)
  writeFileSync(join(dir, 'expired', 'stale.pem'), 'old')
  writeCertMatrix(dir, now)
  t.equal(statSync(join(dir, 'expired', 'key.pem')).mode & 0o777, 0o600, 'key.pem back to 0600')
  t.notOk(existsSync(join(dir, 'expired', 'stale.pem')))
  t.end()
})

void t.test('cert generator – a directory that cannot be written gives an error naming it', t => {
  const blocker = join(t.testdir({ 'a-file': 'not a directory' }), 'a-file')
  const target = join(blocker, 'out')
  t.throws(() => writeCertMatrix(target, now), { message: `cannot write the certificate matrix to ${resolve(target)}: ENOTDIR: not a directory, mkdir '${target}'` })
  t.end()
})

// Runs generate.ts as the entry module, with the TypeScript loader this test runs under.
const runCli = (args: string[]): { status: number | null, stdout: string, stderr: string } =>
  spawnSync(process.execPath, [...process.execArgv, require.resolve('../../certs-test/generate'), ...args], { encoding: 'utf8' })

void t.test('cert generator CLI – prints one line per fixture and a summary; exits 1 with the reason on failure', t => {
  const root = t.testdir({ 'a-file': '' })
  const dir = join(root, 'out')
  const ok = runCli([dir])
  t.equal(ok.status, 0, ok.stderr)
  const lines = ok.stdout.trimEnd().split('\n')
  t.match(lines[0], /^valid-ec-direct +accept spiffe:\/\/td-a\.test\/valid-ec-direct$/)
  t.ok(lines.some(line => /^expired +reject ERR_X509_SVID_EXPIRED$/.test(line)))
  t.match(lines[lines.length - 1], new RegExp(`^wrote ${lines.length - 1} fixtures \\(9 valid, ${lines.length - 10} broken\\) to ${dir}$`))
  t.ok(existsSync(join(dir, 'manifest.json')))

  const failed = runCli([join(root, 'a-file', 'out')])
  t.equal(failed.status, 1)
  t.match(failed.stderr, /^certs: cannot write the certificate matrix to .*a-file\/out: ENOTDIR/)
  t.equal(failed.stdout, '')
  t.end()
})
