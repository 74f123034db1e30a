/**
 * Reading the deployment's files for the static deployment tests (test/deploy/compose*.test.ts): a compose file's
 * services and their mounts, and the entries deploy/register-entries.sh registers. Not a test itself.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse } from 'yaml'

export const ROOT = join(__dirname, '..', '..')
export const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8')

export interface Service {
  build?: string
  image?: string
  user?: string
  entrypoint?: string[]
  command?: string[]
  network_mode?: string
  pid?: string
  networks?: string[] | Record<string, { aliases?: string[] } | null>
  depends_on?: Record<string, { condition: string, restart?: boolean }>
  cap_add?: string[]
  cap_drop?: string[]
  ports?: unknown[]
  expose?: unknown[]
  labels?: Record<string, string>
  volumes?: string[]
  environment?: Record<string, string>
  healthcheck?: { test: string[] }
}
export interface Compose { services: Record<string, Service>, networks: Record<string, { external?: boolean }>, volumes: Record<string, unknown> }

/** A compose file, with its `<<` merge keys applied (services share extension fields). */
export function readCompose (path: string): Compose {
  return parse(read(path), { merge: true }) as Compose
}

export interface Mount { source: string, target: string, readOnly: boolean, named: boolean }
/** Compose's short volume syntax, SOURCE:TARGET[:MODE]; a source without a path is a named volume. */
export function mounts (service: Service): Mount[] {
  return (service.volumes ?? []).map(text => {
    const [source, target, mode] = text.split(':')
    return { source, target, readOnly: mode === 'ro', named: !/^[./~]/.test(source) }
  })
}
export const mountOf = (service: Service, source: string): Mount | undefined => mounts(service).find(m => m.source === source)
export const namedVolumeAt = (service: Service, dir: string): Mount | undefined => mounts(service).find(m => m.named && m.target === dir)

export interface Entry { id: string, selectors: string[] }
/** The entries deploy/register-entries.sh registers: `register SPIFFE_ID SELECTOR…` lines. */
export function registeredEntries (): Entry[] {
  return [...read('deploy/register-entries.sh').matchAll(/^register (spiffe:\/\/\S+)((?: \S+)+)$/gm)]
    .map(m => ({ id: m[1], selectors: m[2].trim().split(' ') }))
}

/** The entries whose every selector the service's labels (docker:label:…) and uid (unix:uid:…) satisfy. */
export function entriesSelecting (entries: readonly Entry[], service: Service): Entry[] {
  const has = new Set(Object.entries(service.labels ?? {}).map(([k, v]) => `docker:label:${k}:${v}`))
  if (service.user !== undefined) has.add(`unix:uid:${service.user.split(':')[0]}`)
  return entries.filter(e => e.selectors.every(s => has.has(s)))
}
