/**
 * `npm run certs [outDir]`: writes the certificate matrix to disk (default `certs-test/out`, relative to the current
 * directory), for tests that need files and for poking at the fixtures with openssl or curl by hand.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { buildCertMatrix, type CertFixture } from './matrix'
import { toPem } from './pki'

export const DEFAULT_OUT_DIR = join('certs-test', 'out')

/** One fixture in manifest.json: the verdict, with the reason pattern as RegExp source text. */
export interface ManifestEntry {
  name: string
  description: string
  expect: { id: string } | { code: string, reason: string }
}

export interface Manifest {
  /** The moment the validity windows are relative to (ISO 8601). */
  builtFor: string
  fixtures: ManifestEntry[]
}

/**
 * Writes one folder per fixture into `dir` (chain.pem leaf first, leaf.pem, intermediates.pem when there are any,
 * key.pem mode 0600, bundle-<trust domain>.pem per trust domain) and manifest.json; returns the fixtures written.
 * Throws an Error naming the directory when it cannot be written.
 */
export function writeCertMatrix (dir: string, now = new Date()): CertFixture[] {
  const fixtures = buildCertMatrix(now)
  try {
    mkdirSync(dir, { recursive: true })
    for (const fixture of fixtures) writeFixture(join(dir, fixture.name), fixture)
    const manifest: Manifest = { builtFor: now.toISOString(), fixtures: fixtures.map(manifestEntry) }
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n')
  } catch (err) {
    throw new Error(`cannot write the certificate matrix to ${resolve(dir)}: ${(err as Error).message}`, { cause: err })
  }
  return fixtures
}

function writeFixture (dir: string, fixture: CertFixture): void {
  // Start from an empty folder so no file of an earlier run (say, a key with a looser mode) survives.
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir)
  const [leaf, ...intermediates] = fixture.chain
  writeFileSync(join(dir, 'chain.pem'), toPem(fixture.chain))
  writeFileSync(join(dir, 'leaf.pem'), toPem([leaf]))
  if (intermediates.length > 0) writeFileSync(join(dir, 'intermediates.pem'), toPem(intermediates))
  writeFileSync(join(dir, 'key.pem'), fixture.key.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 })
  for (const [trustDomain, cas] of Object.entries(fixture.bundles)) {
    writeFileSync(join(dir, `bundle-${trustDomain}.pem`), toPem(cas))
  }
}

function manifestEntry ({ name, description, expect }: CertFixture): ManifestEntry {
  return { name, description, expect: 'id' in expect ? expect : { code: expect.code, reason: expect.reason.source } }
}

function main (args: string[]): number {
  const dir = args[0] ?? DEFAULT_OUT_DIR
  try {
    const fixtures = writeCertMatrix(dir)
    for (const { name, expect } of fixtures) {
      console.log(`${name.padEnd(34)} ${'id' in expect ? `accept ${expect.id}` : `reject ${expect.code}`}`)
    }
    const valid = fixtures.filter(f => 'id' in f.expect).length
    console.log(`wrote ${fixtures.length} fixtures (${valid} valid, ${fixtures.length - valid} broken) to ${resolve(dir)}`)
    return 0
  } catch (err) {
    console.error(`certs: ${(err as Error).message}`)
    return 1
  }
}

if (require.main === module) process.exitCode = main(process.argv.slice(2))
