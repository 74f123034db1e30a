import t from 'tap'
import { TOOLS, cannotInstall, packagesFor } from '../../bench/proxy/tools'

void t.test('tools – the missing commands map to the Debian packages that hold them', async t => {
  t.same(packagesFor(['nginx', 'wrk']), ['wrk', 'nginx-light'], 'in the order of TOOLS, nginx from nginx-light')
  t.same(packagesFor(['ss']), ['iproute2'])
  t.same(packagesFor([]), [])
  t.same(TOOLS.map(([tool]) => tool), ['wrk', 'haproxy', 'nginx', 'ss'])
})

void t.test('tools – apt-get runs only as root; otherwise the reason is given', async t => {
  t.equal(cannotInstall(0), undefined)
  t.equal(cannotInstall(1000), 'installing them needs root')
  t.equal(cannotInstall(undefined), 'installing them needs root', 'no uid (not POSIX): no apt-get either')
})
