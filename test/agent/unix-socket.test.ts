import t from 'tap'
import { connect } from 'node:net'
import { spawn } from 'node:child_process'
import type { Server } from 'node:net'
import { once } from 'node:events'
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { listenUnixSocket } from '../../agent/unix-socket'
import type { ChaperoneError } from '../../spiffe/errors'

const dir = mkdtempSync(join(tmpdir(), 'chaperone-socket-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

async function closed (server: Server): Promise<void> {
  server.close()
  await once(server, 'close')
}

async function codeOf (promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise
  } catch (err) {
    return (err as ChaperoneError).code
  }
  return undefined
}

void t.test('unix socket – created with its final mode, answers connections, removed on close', async t => {
  const path = join(dir, 'nested', 'admin.sock')
  const server = await listenUnixSocket({ path, mode: 0o600 }, socket => socket.end('hi'))
  t.equal(statSync(path).mode & 0o777, 0o600, 'owner only')
  const client = connect(path)
  const [data] = await once(client, 'data') as [Buffer]
  t.equal(data.toString(), 'hi')
  client.destroy()
  await closed(server)
  t.throws(() => statSync(path), { code: 'ENOENT' }, 'the socket file is removed')
})

void t.test('unix socket – a group mode gives the socket to the group', async t => {
  const path = join(dir, 'group.sock')
  const gid = process.getgid?.() ?? 0
  const server = await listenUnixSocket({ path, mode: 0o660, group: String(gid) }, socket => socket.end())
  const stat = statSync(path)
  t.equal(stat.mode & 0o777, 0o660)
  t.equal(stat.gid, gid)
  await closed(server)
  const groupName = readFileSync('/etc/group', 'utf8').split('\n').find(line => line.split(':')[2] === String(gid))?.split(':')[0]
  if (groupName !== undefined) {
    const named = await listenUnixSocket({ path, mode: 0o660, group: groupName }, socket => socket.end())
    t.equal(statSync(path).gid, gid, `group by name (${groupName})`)
    await closed(named)
  }
  t.equal(await codeOf(listenUnixSocket({ path: join(dir, 'x.sock'), mode: 0o660, group: 'no-such-group-here' }, () => {})), 'ERR_SOCKET_GROUP_UNKNOWN')
})

void t.test('unix socket – a stale socket is replaced, a live one or a plain file is never touched', async t => {
  const path = join(dir, 'stale.sock')
  // Another process listens, as a running agent would; then it dies by SIGKILL and leaves its socket behind.
  const other = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] })
  await once(other.stdout, 'data')
  t.equal(await codeOf(listenUnixSocket({ path, mode: 0o600 }, () => {})), 'ERR_SOCKET_IN_USE', 'a live agent keeps its socket')
  other.kill('SIGKILL')
  await once(other, 'exit')
  t.ok(statSync(path).isSocket(), 'the dead agent left its socket behind')
  const second = await listenUnixSocket({ path, mode: 0o600 }, socket => socket.end())
  t.pass('a stale socket is replaced')
  await closed(second)
  const file = join(dir, 'not-a-socket')
  writeFileSync(file, 'keep me')
  t.equal(await codeOf(listenUnixSocket({ path: file, mode: 0o600 }, () => {})), 'ERR_SOCKET_UNAVAILABLE')
  t.equal(readFileSync(file, 'utf8'), 'keep me', 'a plain file is left alone')
})

void t.test('unix socket – a directory option: folders made with its mode and group; a private one refuses others\' folders', async t => {
  const gid = process.getgid?.() ?? 0
  const path = join(dir, 'made', 'private', 'api.sock')
  const server = await listenUnixSocket({ path, mode: 0o770, group: String(gid), directory: { mode: 0o750, private: true } }, socket => socket.end())
  for (const folder of [join(dir, 'made'), join(dir, 'made', 'private')]) {
    t.equal(statSync(folder).mode & 0o777, 0o750, `${folder}: the mode exactly, whatever the umask`)
    t.equal(statSync(folder).gid, gid)
  }
  await closed(server)
  const open = join(dir, 'open')
  mkdirSync(open)
  chmodSync(open, 0o777)
  t.equal(await codeOf(listenUnixSocket({ path: join(open, 'api.sock'), mode: 0o770, directory: { mode: 0o750, private: true } }, () => {})), 'ERR_SOCKET_UNAVAILABLE', 'writable by everyone')
  t.ok(existsSync(open) && !existsSync(join(open, 'api.sock')), 'and nothing made in it')
  const server2 = await listenUnixSocket({ path: join(open, 'api.sock'), mode: 0o770 }, () => {})
  t.pass('a directory that need not be private is used as it is')
  await closed(server2)
  if (process.getuid?.() === 0) {
    const theirs = join(dir, 'theirs')
    mkdirSync(theirs, { mode: 0o755 })
    chownSync(theirs, 4243, 4243)
    await t.rejects(listenUnixSocket({ path: join(theirs, 'api.sock'), mode: 0o770, directory: { mode: 0o750, private: true } }, () => {}),
      { code: 'ERR_SOCKET_UNAVAILABLE', message: /theirs is owned by uid 4243: another user could replace the socket in it/ })
  }
})
