/**
 * Compose v2, built from the Go module proxy at a pinned version into the cache folder (once; about two minutes
 * and 1.3 GB of Go caches cold), so the deployment test runs the compose file with Compose v2 as well as with
 * Debian's docker-compose 1.29. Compose's module excludes two test-only versions in its go.mod, which `go install
 * module@version` refuses, so it is built from a throwaway module that requires it as a tool and copies those
 * exclusions. Not a test itself.
 */
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CACHE_DIR } from './engine'
import { must } from './command'

export const COMPOSE_V2_VERSION = 'v2.40.3'
const MODULE = 'github.com/docker/compose/v2'

/** The path of the built docker-compose binary, building it first when the cache has none. */
export async function composeV2 (): Promise<string> {
  const binary = join(CACHE_DIR, `compose-${COMPOSE_V2_VERSION}`, 'docker-compose')
  if (existsSync(binary)) return binary
  const work = mkdtempSync(join(tmpdir(), 'chaperone-compose-build-'))
  try {
    const go = async (...args: string[]): Promise<string> => await must('go', args, { cwd: work, env: { CGO_ENABLED: '0', GOFLAGS: '' }, timeoutMs: 1_200_000 })
    await go('mod', 'init', 'chaperone.test/compose-build')
    const downloaded = JSON.parse(await go('mod', 'download', '-json', `${MODULE}@${COMPOSE_V2_VERSION}`)) as { GoMod: string }
    // The exclude blocks of Compose's go.mod, so the build resolves exactly the versions Compose pins.
    const excludes = readFileSync(downloaded.GoMod, 'utf8').match(/^exclude \([\s\S]*?^\)$|^exclude [^(].*$/gm) ?? []
    appendFileSync(join(work, 'go.mod'), `\n${excludes.join('\n')}\n`)
    await go('get', '-tool', `${MODULE}/cmd@${COMPOSE_V2_VERSION}`)
    mkdirSync(join(CACHE_DIR, `compose-${COMPOSE_V2_VERSION}`), { recursive: true })
    await go('build', '-trimpath', '-ldflags', `-s -w -X ${MODULE}/internal.Version=${COMPOSE_V2_VERSION}`, '-o', `${binary}.partial`, `${MODULE}/cmd`)
    renameSync(`${binary}.partial`, binary)
    return binary
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}
