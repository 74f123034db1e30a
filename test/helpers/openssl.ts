/** The real `openssl` CLI, for cross-checking the test PKI with an X.509 implementation that is not ours. */
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { existsSync } from 'node:fs'

export const OPENSSL_MISSING = spawnSync('openssl', ['version']).status === 0
  ? undefined
  : 'the openssl CLI is not installed (apt-get install -y openssl)'

/** Runs openssl; `ok` is a zero exit status, `output` stdout and stderr together. */
export function openssl (args: string[], input?: Buffer): { ok: boolean, output: string } {
  const result = spawnSync('openssl', args, { input, encoding: 'utf8' })
  return { ok: result.status === 0, output: `${result.stdout}${result.stderr}` }
}

/** `openssl x509 -text` of a DER certificate. */
export function certText (der: Buffer): string {
  return openssl(['x509', '-inform', 'DER', '-noout', '-text'], der).output
}

/** `openssl verify` of a written fixture's leaf against one trust domain's bundle, with its intermediates if any. */
export function verifyFixture (outDir: string, name: string, trustDomain: string, extraArgs: string[] = []): { ok: boolean, output: string } {
  const dir = join(outDir, name)
  const untrusted = join(dir, 'intermediates.pem')
  return openssl([
    'verify', ...extraArgs,
    '-CAfile', join(dir, `bundle-${trustDomain}.pem`),
    ...(existsSync(untrusted) ? ['-untrusted', untrusted] : []),
    join(dir, 'leaf.pem')
  ])
}
