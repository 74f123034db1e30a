/**
 * User and group names for ids, from /etc/passwd and /etc/group. Read on every attestation (they are small) so an
 * edit by the administrator takes effect at once. An id without a name simply gets no name selector.
 */
import { readFile } from 'node:fs/promises'

export interface AccountNames {
  user (uid: number): string | undefined
  group (gid: number): string | undefined
}

export async function readAccountNames (passwdPath = '/etc/passwd', groupPath = '/etc/group'): Promise<AccountNames> {
  const [users, groups] = await Promise.all([readIdNames(passwdPath), readIdNames(groupPath)])
  return { user: uid => users.get(uid), group: gid => groups.get(gid) }
}

/** `name:password:id:…` lines; the first name listed for an id wins, as getpwuid(3) would answer. */
async function readIdNames (path: string): Promise<Map<number, string>> {
  const names = new Map<number, string>()
  let text = ''
  try {
    text = await readFile(path, 'utf8')
  } catch { /* no account database: ids have no names */ }
  for (const line of text.split('\n')) {
    const [name, , id] = line.split(':')
    if (name !== undefined && name !== '' && id !== undefined && /^\d+$/.test(id) && !names.has(Number(id))) {
      names.set(Number(id), name)
    }
  }
  return names
}
