/** The ids a process runs with, from /proc/<pid>/status: what the kernel checks its permissions against. */

export interface ProcessIds {
  /** Effective uid and gid, as SPIRE's unix attestor reports them: the ids the kernel uses for access checks. */
  readonly uid: number
  readonly gid: number
  readonly supplementaryGids: readonly number[]
}

/** Parses the `Uid:` (real, effective, saved, fs), `Gid:` and `Groups:` lines; undefined if one is missing or malformed. */
export function parseProcessIds (status: string): ProcessIds | undefined {
  const lines = new Map<string, string[]>()
  for (const line of status.split('\n')) {
    const colon = line.indexOf(':')
    if (colon > 0) lines.set(line.slice(0, colon), line.slice(colon + 1).trim().split(/\s+/).filter(Boolean))
  }
  const uid = decimal(lines.get('Uid')?.[1])
  const gid = decimal(lines.get('Gid')?.[1])
  const groups = lines.get('Groups')?.map(decimal)
  if (uid === undefined || gid === undefined || groups === undefined || groups.includes(undefined)) return undefined
  return { uid, gid, supplementaryGids: groups as number[] }
}

function decimal (text: string | undefined): number | undefined {
  return text !== undefined && /^\d+$/.test(text) ? Number(text) : undefined
}
