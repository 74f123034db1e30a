/**
 * `unix:` selectors of a process, from what the kernel reports under /proc/<pid>: its effective ids and
 * supplementary groups (with names from the account databases) and its executable's path and SHA-256.
 */
import { readlink } from 'node:fs/promises'
import type { Logger } from 'pino'
import { readAccountNames } from './accounts'
import { isGoneError, processGone, readProcFile } from './errors'
import type { ExeHashCache } from './exe-hash'
import { parseProcessIds } from './proc-status'

export async function unixSelectorTexts (pid: number, procRoot: string, hashes: ExeHashCache, logger: Logger): Promise<string[]> {
  const [ids, names] = await Promise.all([readProcessIds(pid, procRoot), readAccountNames()])
  const texts = [`unix:uid:${ids.uid}`, `unix:gid:${ids.gid}`]
  const user = names.user(ids.uid)
  const group = names.group(ids.gid)
  if (user !== undefined) texts.push(`unix:user:${user}`)
  if (group !== undefined) texts.push(`unix:group:${group}`)
  for (const gid of ids.supplementaryGids) {
    texts.push(`unix:supplementary_gid:${gid}`)
    const name = names.group(gid)
    if (name !== undefined) texts.push(`unix:supplementary_group:${name}`)
  }
  return [...texts, ...await executableSelectorTexts(pid, procRoot, hashes, logger)]
}

async function readProcessIds (pid: number, procRoot: string): Promise<NonNullable<ReturnType<typeof parseProcessIds>>> {
  const ids = parseProcessIds(await readProcFile(procRoot, pid, 'status', 'latin1'))
  if (ids === undefined) throw new Error(`${procRoot}/${pid}/status has no readable Uid/Gid/Groups lines`)
  return ids
}

/**
 * `unix:path` and `unix:sha256`. Both are skipped (and logged) when the executable was deleted or replaced since it
 * was started: the path would then name another file, or none. A missing exe link means the process has exited.
 */
async function executableSelectorTexts (pid: number, procRoot: string, hashes: ExeHashCache, logger: Logger): Promise<string[]> {
  const exe = `${procRoot}/${pid}/exe`
  let path: string
  try {
    path = await readlink(exe)
  } catch (err) {
    if (isGoneError(err)) throw processGone(pid, exe, err)
    throw err
  }
  if (path.endsWith(' (deleted)')) {
    logger.info({ pid, path }, 'executable was deleted after the process started: no unix:path or unix:sha256 selector')
    return []
  }
  let hash
  try {
    hash = await hashes.hash(exe)
  } catch (err) {
    if (isGoneError(err)) throw processGone(pid, exe, err)
    throw err
  }
  if ('tooLarge' in hash) {
    logger.info({ pid, path, size: hash.tooLarge }, 'executable is larger than maxHashBytes: no unix:sha256 selector')
    return [`unix:path:${path}`]
  }
  return [`unix:path:${path}`, `unix:sha256:${hash.sha256}`]
}
