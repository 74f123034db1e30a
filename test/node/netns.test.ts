import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { closeSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Netns, netnsIdentity } from '../../node'
import type { NetnsError } from '../../node'
import { NETNS_SKIP, SETPRIV_MISSING, createTopology } from '../helpers/netns'
import { SETPRIV, ip, runSync } from '../helpers/netns-tools'
import { thrown } from '../helpers/errors'

// Network namespaces opened by path, told apart by identity, and entered on the main thread and left again — also
// when the function throws; bad paths, nesting, async functions and a failed return give their coded errors.

const fdCount = (): number => readdirSync('/proc/self/fd').length

/** Runs the scenario fixture (a process of its own) and returns its JSON line. */
async function scenario (args: string[], asUser = false): Promise<Record<string, unknown>> {
  const loader = process.execArgv.filter(arg => arg.includes('@tapjs/typescript'))
  const node = [process.execPath, ...loader, join(__dirname, 'fixtures', 'netns-scenario.ts'), ...args]
  const argv = asUser ? [SETPRIV as string, '--reuid=65534', '--regid=65534', '--clear-groups', 'env', '-u', 'NODE_OPTIONS', ...node] : node
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += String(chunk) })
  child.stderr.on('data', (chunk: Buffer) => { stderr += String(chunk) })
  const [status] = await once(child, 'close') as [number | null]
  if (status !== 0) throw new Error(`scenario ${args.join(' ')} exited with ${status}: ${stderr}`)
  return JSON.parse(stdout) as Record<string, unknown>
}

void t.test('netns – opening, identities and entering', { skip: NETNS_SKIP }, async t => {
  const topology = await createTopology({ prefix: 'nsn', hosts: ['a', 'b'] })
  t.teardown(topology.destroy)
  const netns = new Netns()
  t.teardown(() => { netns.close() })
  const pathOf = (host: string): string => `/var/run/netns/${topology.hosts[host].ns}`
  const a = netns.open(pathOf('a'))
  const b = netns.open(pathOf('b'))
  const home = netns.homeIdentity

  void t.test('identities tell namespaces apart, whatever path reaches them', async t => {
    t.equal(home, netnsIdentity('/proc/self/ns/net'), 'home is the process\'s own namespace')
    t.equal(netns.currentIdentity(), home)
    t.not(a.identity, home)
    t.not(a.identity, b.identity)
    t.equal(a.identity, netnsIdentity(pathOf('a')))
    t.match(a.identity, /^\d+:\d+$/)

    // a process in a (killed with the topology, which kills every process of its namespaces)
    const sleeper = Number((await topology.exec('a', 'sh', ['-c', 'sleep 60 >/dev/null 2>&1 & echo $!'])).stdout)
    const viaProc = netns.open(`/proc/${sleeper}/ns/net`)
    t.teardown(() => { viaProc.close() })
    t.equal(viaProc.identity, a.identity, '/proc/<pid>/ns/net of a process in a')

    const dir = mkdtempSync(join(tmpdir(), 'chaperone-netns-'))
    const mountPoint = join(dir, 'bound')
    writeFileSync(mountPoint, '')
    t.teardown(() => {
      runSync('umount', [mountPoint])
      rmSync(dir, { recursive: true, force: true })
    })
    t.equal(runSync('mount', ['--bind', pathOf('b'), mountPoint]).status, 0, 'bind mount of b')
    const viaMount = netns.open(mountPoint)
    t.teardown(() => { viaMount.close() })
    t.equal(viaMount.identity, b.identity, 'a bind mount of b')
  })

  void t.test('a namespace made anew under the same name has a new identity (a restarted container)', async t => {
    const name = `${topology.run}-again`
    await ip('netns', 'add', name)
    t.teardown(async () => { await ip('netns', 'delete', name).catch(() => undefined) })
    const before = netns.open(`/var/run/netns/${name}`)
    await ip('netns', 'delete', name)
    await ip('netns', 'add', name)
    const after = netnsIdentity(`/var/run/netns/${name}`)
    t.not(after, before.identity)
    t.equal(netns.within(before, () => netns.currentIdentity()), before.identity, 'the open descriptor still enters the old namespace')
    before.close()
  })

  void t.test('within runs fn in the namespace and returns to home, with fn\'s value', async t => {
    t.equal(netns.within(a, () => netns.currentIdentity()), a.identity)
    t.equal(netns.currentIdentity(), home)
    t.equal(netns.within(b, () => netns.currentIdentity()), b.identity)
    t.equal(netns.currentIdentity(), home)
    // /proc/thread-self/net shows the thread's network namespace: a's links are lo and eth0
    const links = netns.within(a, () => readFileSync('/proc/thread-self/net/dev', 'utf8'))
    t.same(links.split('\n').slice(2).map(line => line.split(':')[0].trim()).filter(Boolean).sort(), ['eth0', 'lo'])
    const own = netns.open('/proc/thread-self/ns/net')
    t.equal(netns.within(own, () => netns.currentIdentity()), home, 'home itself needs no setns')
    own.close()
  })

  void t.test('within returns home when fn throws, and rethrows fn\'s error', async t => {
    const boom = new Error('boom')
    let inside = ''
    t.throws(() => netns.within(a, () => { inside = netns.currentIdentity(); throw boom }), boom)
    t.equal(inside, a.identity)
    t.equal(netns.currentIdentity(), home)
  })

  void t.test('nested and async calls are refused, and the thread is home afterwards', async t => {
    let nested = ''
    netns.within(a, () => { nested = thrown(() => netns.within(b, () => undefined)).code })
    t.equal(nested, 'ERR_NETNS_NESTED')
    t.equal(netns.currentIdentity(), home)
    const error = thrown(() => netns.within(a, async () => { await Promise.resolve() }))
    t.equal(error.code, 'ERR_NETNS_ASYNC')
    t.equal(netns.currentIdentity(), home)
    t.equal(netns.within(a, () => 'fine'), 'fine', 'usable afterwards')
  })

  void t.test('bad paths give clear coded errors, and leak no descriptor', async t => {
    const before = fdCount()
    const missing = thrown(() => netns.open(`/var/run/netns/${topology.run}-missing`)) as NetnsError
    t.equal(missing.code, 'ERR_NETNS_OPEN')
    t.equal(missing.errno, 'ENOENT')
    t.match(missing.message, /ip netns list/)
    t.equal(thrown(() => netnsIdentity('/proc/0/ns/net')).code, 'ERR_NETNS_OPEN')

    const plain = join(tmpdir(), `chaperone-not-netns-${process.pid}`)
    writeFileSync(plain, '')
    t.teardown(() => { rmSync(plain, { force: true }) })
    const notNs = thrown(() => netns.open(plain)) as NetnsError
    t.equal(notNs.code, 'ERR_NETNS_NOT_A_NETNS')
    t.equal(notNs.errno, 'ENOTTY')
    t.match(notNs.message, /not a namespace file/)

    const mount = thrown(() => netns.open('/proc/self/ns/mnt'))
    t.equal(mount.code, 'ERR_NETNS_NOT_A_NETNS')
    t.match(mount.message, /a mount namespace, not a network namespace/)
    t.equal(fdCount(), before, 'every descriptor opened on the way was closed')
  })

  void t.test('a closed handle or Netns is refused; closing closes the descriptors', async t => {
    const before = fdCount()
    const other = new Netns()
    const handle = other.open(pathOf('a'))
    t.equal(fdCount(), before + 2)
    handle.close()
    handle.close()
    t.equal(thrown(() => other.within(handle, () => undefined)).code, 'ERR_NETNS_CLOSED')
    other.open(pathOf('b'))
    other.close()
    t.equal(fdCount(), before, 'close() closed home and the namespaces still open')
    t.equal(thrown(() => other.within(a, () => undefined)).code, 'ERR_NETNS_CLOSED')
  })

  void t.test('many entries leak no descriptor and always come home', async t => {
    const before = fdCount()
    for (let i = 0; i < 200; i++) {
      netns.within(i % 2 === 0 ? a : b, () => closeSync(openSync('/proc/thread-self/ns/net', 'r')))
      try { netns.within(a, () => { throw new Error('x') }) } catch { /* expected */ }
    }
    t.equal(fdCount(), before)
    t.equal(netns.currentIdentity(), home)
  })

  void t.test('a failed return is fatal: ERR_NETNS_RETURN now and on every later call', async t => {
    const result = await scenario(['return-fails', pathOf('a')])
    t.equal(result.ran, true)
    t.match(result.first, { code: 'ERR_NETNS_RETURN', errno: 'EBADF', message: /wrong network namespace and must exit/ })
    t.equal(result.after, a.identity, 'the thread was indeed left in a')
    t.not(result.home, a.identity)
    t.match(result.again, { code: 'ERR_NETNS_RETURN' })
  })

  void t.test('without privileges: entering says CAP_SYS_ADMIN, marking says CAP_NET_ADMIN', { skip: SETPRIV_MISSING }, async t => {
    const result = await scenario(['unprivileged', pathOf('a')], true)
    t.match(result.enter, { code: 'ERR_NETNS_ENTER', errno: 'EPERM', message: /CAP_SYS_ADMIN/ })
    t.match(result.mark, { code: 'ERR_NETNS_SOCKET', errno: 'EPERM', message: /CAP_NET_ADMIN/ })
    t.same(result.unmarked, {}, 'an unmarked socket in its own namespace needs nothing')
    t.match(result.openInit, { code: 'ERR_NETNS_OPEN', errno: 'EACCES' })
    t.same(result.connectEvent, { code: 'ERR_NETNS_ENTER', errno: 'EPERM' }, 'connect() reports it as an \'error\' event')
    t.equal(result.current, result.home)
  })
})
