import t from 'tap'
import { GHOSTUNNEL } from '../../bench/peers/ghostunnel'
import { TOOLS, cannotInstall, ghostunnelSkipped, packagesFor } from '../../bench/proxy/tools'

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

void t.test('tools – without Go (or taskset), the ghostunnel path is skipped, naming what is missing and what for', async t => {
  const noGo = ghostunnelSkipped(['go'])
  t.match(noGo, /^ghostunnel path skipped: go not found \(Go builds ghostunnel v1\.8\.4 from the Go module proxy, with cgo, into /)
  t.match(noGo, GHOSTUNNEL.output)
  t.equal(ghostunnelSkipped(['taskset']), 'ghostunnel path skipped: taskset not found (taskset, from util-linux, starts each ghostunnel hop on one CPU)')
  t.match(ghostunnelSkipped(['taskset', 'go']), /^ghostunnel path skipped: taskset, go not found \(taskset, from util-linux, .*; Go builds/)
  t.notOk(TOOLS.some(([tool]) => tool === 'go'), 'Go is not one of the tools whose absence skips the whole benchmark')
})

