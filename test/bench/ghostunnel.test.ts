import t from 'tap'
import { join } from 'node:path'
import { GHOSTUNNEL, GHOSTUNNEL_VERSION } from '../../bench/peers/ghostunnel'
import { GO_TOOL_CACHE } from '../../bench/peers/go-tool'
import { CLIENT_ID, SERVER_DNS_NAME, SERVER_ID } from '../../bench/proxy/chaperone'
import type { Pki } from '../../bench/proxy/configs'
import { GHOSTUNNEL_ENV, ghostunnelClientArgs, ghostunnelServerArgs, ghostunnelVersion } from '../../bench/proxy/ghostunnel'

const svid = (name: string): Pki['client'] => ({ cert: `/s/${name}.pem`, key: `/s/${name}.key`, combined: `/s/${name}.combined.pem` })
const pki: Pki = { client: svid('client'), server: svid('server'), bundle: '/s/bundle.pem' }

void t.test('ghostunnel – the server hop: mutual TLS on the server SVID, the client\'s ID only, to the backend', async t => {
  t.same(ghostunnelServerArgs(4001, 4002, pki), ['server', '--listen', '127.0.0.1:4001', '--target', '127.0.0.1:4002',
    '--keystore', '/s/server.combined.pem', '--cacert', '/s/bundle.pem', '--allow-uri', CLIENT_ID, '--quiet=conns', '--quiet=conn-errs'])
})

void t.test('ghostunnel – the client hop: the client SVID, the server\'s ID and its DNS name checked', async t => {
  t.same(ghostunnelClientArgs(4000, 4001, pki), ['client', '--listen', '127.0.0.1:4000', '--target', '127.0.0.1:4001',
    '--keystore', '/s/client.combined.pem', '--cacert', '/s/bundle.pem', '--verify-uri', SERVER_ID, '--override-server-name', SERVER_DNS_NAME, '--quiet=conns', '--quiet=conn-errs'])
  t.equal(SERVER_DNS_NAME, 'server.bench.example')
})

void t.test('ghostunnel – nothing on the hot path but the proxying: no status port, no per-connection log, no unused key share', async t => {
  for (const args of [ghostunnelServerArgs(1, 2, pki), ghostunnelClientArgs(1, 2, pki)]) {
    t.notOk(args.some(a => a.startsWith('--status') || a.startsWith('--metrics') || a === '--enable-pprof'), args[0])
  }
  t.same(GHOSTUNNEL_ENV, { GODEBUG: 'tlsmlkem=0' })
})

void t.test('ghostunnel – the version line, and one pinned build shared with the interop suite', async t => {
  t.equal(ghostunnelVersion('rev v1.8.4 built with go1.26.8\n'), 'v1.8.4 (go1.26.8)')
  t.equal(ghostunnelVersion('something else'), 'unknown')
  t.equal(GHOSTUNNEL_VERSION, 'v1.8.4')
  t.equal(GHOSTUNNEL.output, join(GO_TOOL_CACHE, 'ghostunnel-v1.8.4', 'ghostunnel'))
  t.equal(GHOSTUNNEL.cgo, true)
})
