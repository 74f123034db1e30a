/**
 * The images the deployment runs, made on this machine with no image registry:
 * - a Node base image standing in for node:20-bookworm-slim: Debian bookworm from debootstrap (minbase) with this
 *   machine's Node and npm, its CA certificates and npm settings (registry, CA file), and Node's headers so native
 *   modules compile without a download. Its root file system is kept as a tar in the cache folder;
 * - chaperone:local from the repository's Dockerfile on that base (the NODE_IMAGE build argument), which is the
 *   image docker-compose.yml names, so `up` finds it and builds nothing;
 * - stand-ins for the two sample images, under their names: curlimages/curl:8.5.0 (sh, curl and sleep from this
 *   machine, as curl_user, uid 100, like the original) and hashicorp/http-echo:0.2.3 (apps/http-echo, which answers
 *   like the original and also logs each request's headers, so the test can see the identity app-b was given).
 * On an engine the test did not start, every name it set is given back afterwards (removed, or pointed at the image
 * it named before).
 */
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { buildGoProgram } from '../../../bench/peers/go-tool'
import { CACHE_DIR } from './engine'
import { must, run } from '../../helpers/command'

const ROOT = join(__dirname, '..', '..', '..')
export const CHAPERONE_IMAGE = 'chaperone:local'
export const CURL_IMAGE = 'curlimages/curl:8.5.0'
export const HTTP_ECHO_IMAGE = 'hashicorp/http-echo:0.2.3'
const CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt'
const PATH_ENV = 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

/** The image ID a name points at, or undefined. */
export async function imageId (name: string): Promise<string | undefined> {
  const inspected = await run('docker', ['image', 'inspect', '--format', '{{.Id}}', name])
  return inspected.status === 0 ? inspected.stdout.trim() : undefined
}

/** `docker import` of a folder, as root-owned files, with Dockerfile `changes`. */
async function importFolder (dir: string, name: string, changes: string[]): Promise<void> {
  const tar = `${dir}.tar`
  chmodSync(dir, 0o755) // the image's / (mkdtemp made it 0700, which only root could enter)
  try {
    await must('tar', ['--owner=0', '--group=0', '-C', dir, '-cf', tar, '.'], { timeoutMs: 300_000 })
    await must('docker', ['import', ...changes.flatMap(c => ['--change', c]), tar, name], { timeoutMs: 300_000 })
  } finally {
    rmSync(tar, { force: true })
  }
}

/** Node's installation on this machine: the binary, npm's folder and the headers' folder. */
function nodeInstall (): { node: string, npm: string, headers: string } {
  const prefix = dirname(dirname(process.execPath))
  const npmCli = realpathSync((process.env.npm_execpath ?? '') !== '' ? process.env.npm_execpath ?? '' : join(prefix, 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js'))
  return { node: process.execPath, npm: dirname(dirname(npmCli)), headers: join(prefix, 'include', 'node') }
}

/** The base image's root file system as a tar in the cache (made once per Node version), imported under its name. */
async function baseImage (log: (line: string) => void): Promise<string> {
  const name = `chaperone-deploy-base:node-${process.version}`
  if (await imageId(name) !== undefined) return name
  const tar = join(CACHE_DIR, `base-bookworm-node-${process.version}.tar`)
  if (!existsSync(tar)) {
    log('making the Node base image: debootstrap bookworm (minbase) and this machine\'s Node')
    const dir = mkdtempSync(join(CACHE_DIR, 'base-'))
    try {
      // debootstrap's own default mirror: nothing is named here.
      await must('debootstrap', ['--variant=minbase', 'bookworm', dir], { timeoutMs: 900_000 })
      const { node, npm, headers } = nodeInstall()
      const local = join(dir, 'usr', 'local')
      mkdirSync(join(local, 'lib', 'node_modules'), { recursive: true })
      mkdirSync(join(local, 'include'), { recursive: true })
      mkdirSync(join(local, 'etc'), { recursive: true })
      copyFileSync(node, join(local, 'bin', 'node'))
      chmodSync(join(local, 'bin', 'node'), 0o755)
      cpSync(npm, join(local, 'lib', 'node_modules', 'npm'), { recursive: true })
      symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', join(local, 'bin', 'npm'))
      symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', join(local, 'bin', 'npx'))
      cpSync(headers, join(local, 'include', 'node'), { recursive: true })
      // This machine's way to the npm registry: its registry setting and CA certificates (an intercepting proxy's
      // CA among them, where there is one). nodedir: node-gyp compiles against the copied headers.
      const registry = (await must('npm', ['config', 'get', 'registry'])).trim()
      const npmrc = [`registry=${registry}`, 'nodedir=/usr/local']
      if (existsSync(CA_BUNDLE)) {
        mkdirSync(join(dir, dirname(CA_BUNDLE)), { recursive: true })
        copyFileSync(CA_BUNDLE, join(dir, CA_BUNDLE))
        npmrc.push(`cafile=${CA_BUNDLE}`)
      }
      writeFileSync(join(local, 'etc', 'npmrc'), `${npmrc.join('\n')}\n`)
      chmodSync(dir, 0o755) // the image's / (mkdtemp made it 0700, which only root could enter)
      rmSync(join(dir, 'var', 'lib', 'apt', 'lists'), { recursive: true, force: true })
      mkdirSync(join(dir, 'var', 'lib', 'apt', 'lists', 'partial'), { recursive: true })
      await must('tar', ['--numeric-owner', '-C', dir, '-cf', `${tar}.partial`, '.'], { timeoutMs: 300_000 })
      await must('mv', [`${tar}.partial`, tar])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }
  await must('docker', ['import', '--change', PATH_ENV, '--change', 'CMD ["node"]', tar, name], { timeoutMs: 300_000 })
  return name
}

/** The shared libraries `binaries` load, from ldd. */
async function sharedLibraries (binaries: string[]): Promise<string[]> {
  const out = await must('ldd', binaries)
  return [...new Set([...out.matchAll(/(\/\S+) \(0x/g)].map(m => m[1]))]
}

/** The curl stand-in (sh, curl and sleep), which is also what the Docker discovery test runs as its apps. */
export async function curlImage (): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-curl-'))
  try {
    const binaries = ['sh', 'curl', 'sleep'].map(b => realpathSync(join('/usr/bin', b)))
    const place = (source: string, target = source): void => {
      mkdirSync(join(dir, dirname(target)), { recursive: true })
      copyFileSync(source, join(dir, target))
      chmodSync(join(dir, target), 0o755)
    }
    for (const lib of await sharedLibraries(binaries)) place(realpathSync(lib), lib)
    place(binaries[0], '/bin/sh')
    place(binaries[1], '/usr/bin/curl')
    place(binaries[2], '/usr/bin/sleep')
    mkdirSync(join(dir, 'etc'))
    writeFileSync(join(dir, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\ncurl_user:x:100:101:curl:/home/curl_user:/bin/sh\n')
    writeFileSync(join(dir, 'etc', 'group'), 'root:x:0:\ncurl_group:x:101:\n')
    mkdirSync(join(dir, 'home', 'curl_user'), { recursive: true })
    mkdirSync(join(dir, 'tmp'), { mode: 0o1777 })
    chmodSync(join(dir, 'tmp'), 0o1777)
    await importFolder(dir, CURL_IMAGE, [PATH_ENV, 'USER curl_user', 'CMD ["curl"]'])
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

async function httpEchoImage (): Promise<void> {
  const binary = await buildGoProgram(join(__dirname, 'apps', 'http-echo'), join(CACHE_DIR, 'bin'), 'http-echo')
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-http-echo-'))
  try {
    copyFileSync(binary, join(dir, 'http-echo'))
    chmodSync(join(dir, 'http-echo'), 0o755)
    await importFolder(dir, HTTP_ECHO_IMAGE, ['ENTRYPOINT ["/http-echo"]'])
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

export interface Images {
  /** Gives back every name set here, as it was (on an engine the test did not start). */
  restore: () => Promise<void>
}

/** Builds every image; `log` reports the slow steps. */
export async function buildImages (keepNames: boolean, log: (line: string) => void): Promise<Images> {
  mkdirSync(join(CACHE_DIR, 'bin'), { recursive: true })
  const names = [CHAPERONE_IMAGE, CURL_IMAGE, HTTP_ECHO_IMAGE]
  const before = new Map<string, string | undefined>()
  for (const name of names) before.set(name, await imageId(name))
  const restore = async (): Promise<void> => {
    if (keepNames) return
    for (const [name, id] of before) {
      if (id === undefined) await run('docker', ['image', 'rm', name])
      else await run('docker', ['tag', id, name])
    }
  }
  try {
    const base = await baseImage(log)
    log(`building ${CHAPERONE_IMAGE} from the Dockerfile on ${base}`)
    await must('docker', ['build', '--network', 'host', '--build-arg', `NODE_IMAGE=${base}`, '-t', CHAPERONE_IMAGE, ROOT],
      { env: { DOCKER_BUILDKIT: '0' }, timeoutMs: 1_800_000 })
    log('making the sample apps\' images')
    await curlImage()
    await httpEchoImage()
  } catch (error) {
    await restore()
    throw error
  }
  return { restore }
}
