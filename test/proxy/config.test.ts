import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadSidecarConfig } from '../../proxy/config'
import { parseHostPort } from '../../proxy/host-port'
import { thrown } from '../helpers/errors'

// The sidecar's configuration: flags for the common cases, a file for the rest, one schema, secure defaults.

const dir = mkdtempSync(join(tmpdir(), 'chaperone-sidecar-config-'))
t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
const file = (name: string, text: string): string => {
  const path = join(dir, name)
  writeFileSync(path, text)
  return path
}
const TD = 'spiffe://plant.example'

void t.test('sidecar config – flags alone: listeners from LISTEN=TARGET[@ID], secure defaults filled in', async t => {
  const config = loadSidecarConfig(undefined, {
    policy: 'policy.yaml',
    inbound: ['0.0.0.0:8443=127.0.0.1:8080'],
    inboundHttp: ['[::]:9443=[::1]:9080'],
    outbound: [`127.0.0.1:9001=10.0.0.2:8443@${TD}/api`],
    outboundHttp: ['localhost:9002=api.internal:443']
  })
  t.match(config, { policy: 'policy.yaml', admin: { host: '127.0.0.1', port: 15000 }, logLevel: 'info', handshakeTimeoutMs: 10_000, idleTimeoutMs: 3_600_000, maxConnections: 10_000, drainMs: 15_000 })
  t.same(config.listeners.map(l => [l.name, l.direction, l.protocol, `${l.listen.host}:${l.listen.port}`, `${l.target.host}:${l.target.port}`, l.expect]), [
    ['inbound-1', 'inbound', 'tcp', '0.0.0.0:8443', '127.0.0.1:8080', undefined],
    ['inbound-2', 'inbound', 'http', ':::9443', '::1:9080', undefined],
    ['outbound-1', 'outbound', 'tcp', '127.0.0.1:9001', '10.0.0.2:8443', `${TD}/api`],
    ['outbound-2', 'outbound', 'http', 'localhost:9002', 'api.internal:443', undefined]
  ])
  t.ok(Object.isFrozen(config) && Object.isFrozen(config.listeners[0]))
})

void t.test('sidecar config – plaintext stays on loopback unless a listener says unsafe: true', async t => {
  const inbound = thrown(() => loadSidecarConfig(undefined, { policy: 'p.yaml', inbound: ['0.0.0.0:8443=10.0.0.5:8080'] }))
  t.equal(inbound.code, 'ERR_CONFIG_INVALID')
  t.match(inbound.message, '--inbound flag 1: inbound[0].target: 10.0.0.5 is not loopback: plaintext would leave this network namespace (set unsafe: true if that is intended)')
  const outbound = thrown(() => loadSidecarConfig(undefined, { policy: 'p.yaml', outbound: ['0.0.0.0:9001=10.0.0.2:8443'] }))
  t.match(outbound.message, 'outbound[0].listen: 0.0.0.0 is not loopback')
  const unsafe = loadSidecarConfig(file('unsafe.yaml', 'policy: p.yaml\ninbound:\n  - { listen: "0.0.0.0:8443", target: "10.0.0.5:8080", unsafe: true }\n'))
  t.equal(unsafe.listeners[0].target.host, '10.0.0.5')
})

void t.test('sidecar config – every problem named with its file:line:column or flag', async t => {
  const bad = file('bad.yaml', [
    'policy: p.yaml',
    'inbound:',
    '  - listen: "0.0.0.0:8443"',
    '    target: "127.0.0.1:99999"',
    '    protocol: udp',
    'outbound:',
    '  - listen: "127.0.0.1:9001"',
    '    target: "10.0.0.2:8443"',
    '    expect: spiffe://plant.example/**/x',
    '    colour: red',
    ''
  ].join('\n'))
  const err = thrown(() => loadSidecarConfig(bad))
  t.match(err.message, `${bad}:5:15: inbound[0].protocol: must be one of "tcp", "http"`)
  t.match(err.message, `${bad}:10:5: outbound[0].colour: unknown field`)
  const afterSchema = file('semantic.yaml', 'policy: p.yaml\nspiffeId: spiffe://Plant/x\ninbound:\n  - { listen: "0.0.0.0:8443", target: "127.0.0.1:99999" }\noutbound:\n  - { listen: "127.0.0.1:9001", target: "10.0.0.2:8443", expect: "spiffe://plant.example/**/x" }\n')
  const message = thrown(() => loadSidecarConfig(afterSchema)).message
  t.match(message, `${afterSchema}:4:39: inbound[0].target: "127.0.0.1:99999" is not host:port`)
  t.match(message, `${afterSchema}:6:66: outbound[0].expect: bad SPIFFE ID pattern "spiffe://plant.example/**/x": ** must be the last segment`)
  t.match(message, `${afterSchema}:2:11: spiffeId: invalid SPIFFE ID "spiffe://Plant/x"`)
  t.match(thrown(() => loadSidecarConfig(undefined, { inbound: ['0.0.0.0:1=127.0.0.1:2'] })).message, 'missing required field "policy"')
  t.match(thrown(() => loadSidecarConfig(undefined, { policy: 'p.yaml' })).message, 'no listeners: give --inbound')
  t.match(thrown(() => loadSidecarConfig(file('dup.yaml', 'policy: p.yaml\ninbound:\n  - { name: web, listen: "0.0.0.0:1", target: "127.0.0.1:2" }\noutbound:\n  - { name: web, listen: "127.0.0.1:3", target: "10.0.0.1:4" }\n'))).message, 'two listeners are named "web"')
})

void t.test('sidecar config – host:port forms', async t => {
  t.same(parseHostPort('127.0.0.1:80'), { host: '127.0.0.1', port: 80 })
  t.same(parseHostPort('[::1]:443'), { host: '::1', port: 443 })
  t.same(parseHostPort('api.internal:8443'), { host: 'api.internal', port: 8443 })
  t.same(parseHostPort('127.0.0.1:0', true), { host: '127.0.0.1', port: 0 }, 'port 0 (any free port) where listening')
  for (const bad of ['127.0.0.1', ':80', '127.0.0.1:0', '::1:80', 'host:65536', 'a b:1']) t.type(parseHostPort(bad), 'string', bad)
})

void t.test('sidecar config – servicePort: the app port a listener stands for; outbound default the target\'s port', async t => {
  const config = loadSidecarConfig(file('service-port.yaml', [
    'policy: p.yaml',
    'inbound:',
    '  - { name: web, listen: "0.0.0.0:8443", target: "127.0.0.1:8080" }',
    'outbound:',
    '  - { name: api, listen: "127.0.0.1:9001", target: "10.0.0.2:8443", servicePort: 8080 }',
    '  - { name: db, listen: "127.0.0.1:9002", target: "10.0.0.3:5432" }',
    'httpProxy:',
    '  - { listen: "127.0.0.1:3128" }',
    'transparent: { outbound: 15001, inbound: 15006 }',
    ''
  ].join('\n')))
  t.same(config.listeners.map(l => [l.name, l.servicePort]), [
    ['web', 8080], ['api', 8080], ['db', 5432], ['http-proxy-1', 0], ['transparent-outbound', 0], ['transparent-inbound', 0]
  ], 'inbound: the target\'s port; outbound: servicePort, else the target\'s; per connection (0) for the others')
  const bad = file('bad-service-port.yaml', 'policy: p.yaml\ninbound:\n  - { listen: "0.0.0.0:1", target: "127.0.0.1:2", servicePort: 2 }\noutbound:\n  - { listen: "127.0.0.1:3", target: "10.0.0.1:4", servicePort: 0 }\n')
  const message = thrown(() => loadSidecarConfig(bad)).message
  t.match(message, `${bad}:3:51: inbound[0].servicePort: unknown field`, 'an inbound listener\'s service port is its target\'s')
  t.match(message, `${bad}:5:65: outbound[0].servicePort: must be >= 1`)
})

void t.test('sidecar config – the flag suffix ,port=PORT sets an outbound listener\'s service port', async t => {
  const config = loadSidecarConfig(undefined, {
    policy: 'p.yaml',
    outbound: [`127.0.0.1:9001=10.0.0.2:8443@${TD}/api,port=8080`, '127.0.0.1:9002=10.0.0.3:8443,port=5432', '127.0.0.1:9003=10.0.0.4:8443'],
    outboundHttp: [`127.0.0.1:9004=[::1]:8443@${TD}/**,port=80`]
  })
  t.same(config.listeners.map(l => [l.name, `${l.target.host}:${l.target.port}`, l.expect, l.servicePort]), [
    ['outbound-1', '10.0.0.2:8443', `${TD}/api`, 8080],
    ['outbound-2', '10.0.0.3:8443', undefined, 5432],
    ['outbound-3', '10.0.0.4:8443', undefined, 8443],
    ['outbound-4', '::1:8443', `${TD}/**`, 80]
  ])
})

void t.test('sidecar config – a listener flag without = says LISTEN=TARGET, with an example, not what the schema missed', async t => {
  const err = thrown(() => loadSidecarConfig(undefined, { policy: 'p.yaml', inbound: ['127.0.0.1:8443'], outboundHttp: ['127.0.0.1:15001'] }))
  t.equal(err.message, [
    'invalid configuration (command-line flags):',
    '  --inbound flag 1: "127.0.0.1:8443" is not LISTEN=TARGET, e.g. --inbound 0.0.0.0:15443=127.0.0.1:8080',
    '  --outbound-http flag 1: "127.0.0.1:15001" is not LISTEN=TARGET, e.g. --outbound-http 127.0.0.1:15001=app-b.internal:15443@spiffe://plant.example/app-b'
  ].join('\n'))
})

void t.test('sidecar config – durations: 30 from a flag is whole seconds; anything else is one line saying the forms', async t => {
  const inbound = ['127.0.0.1:15443=127.0.0.1:8080']
  t.equal(loadSidecarConfig(undefined, { policy: 'p.yaml', inbound, readyTimeout: '3' }).readyTimeoutMs, 3000)
  t.equal(loadSidecarConfig(undefined, { policy: 'p.yaml', inbound, readyTimeout: '1m30s' }).readyTimeoutMs, 90_000)
  t.equal(thrown(() => loadSidecarConfig(undefined, { policy: 'p.yaml', inbound, readyTimeout: '3 s' })).message,
    'invalid configuration (command-line flags):\n  command-line flags: readyTimeout: must be a duration: whole seconds (30) or 30s, 5m, 1h, 1h30m, not "3 s"')
  const fromFile = thrown(() => loadSidecarConfig(file('handshake.yaml', 'policy: p.yaml\ninbound: [{ listen: "127.0.0.1:15443", target: "127.0.0.1:8080" }]\ntimeouts:\n  handshake: 10 seconds\n')))
  t.match(fromFile.message, /\n {2}\S+handshake\.yaml:4:14: timeouts\.handshake: must be a duration: whole seconds \(30\) or 30s, 5m, 1h, 1h30m, not "10 seconds"$/)
  t.equal(fromFile.message.split('\n').length, 2, 'one line for the one problem')
})

void t.test('sidecar config – a malformed ,port= suffix is an error naming the flag', async t => {
  const err = thrown(() => loadSidecarConfig(undefined, {
    policy: 'p.yaml',
    outbound: ['127.0.0.1:9001=10.0.0.2:8443,prot=8080', `127.0.0.1:9002=10.0.0.2:8443@${TD}/api,port=`],
    outboundHttp: ['127.0.0.1:9003=10.0.0.2:8443,port=80,port=81']
  }))
  t.equal(err.code, 'ERR_CONFIG_INVALID')
  const suffix = 'after the target is not ",port=PORT" (the service port the listener stands for)'
  t.match(err.message, `--outbound flag 1: outbound[0].servicePort: ",prot=8080" ${suffix}`)
  t.match(err.message, `--outbound flag 2: outbound[1].servicePort: ",port=" ${suffix}`)
  t.match(err.message, `--outbound-http flag 1: outbound[2].servicePort: ",port=80,port=81" ${suffix}`)
  const range = thrown(() => loadSidecarConfig(file('one.yaml', 'policy: p.yaml\noutbound:\n  - { listen: "127.0.0.1:1", target: "10.0.0.1:2" }\n'), { outboundHttp: ['127.0.0.1:9001=10.0.0.2:8443,port=70000'] }))
  t.match(range.message, '--outbound-http flag 1: outbound[1].servicePort: must be <= 65535', 'flags after the file\'s listeners are named by their own flag')
  const inbound = thrown(() => loadSidecarConfig(undefined, { policy: 'p.yaml', inboundHttp: ['0.0.0.0:8443=127.0.0.1:8080,port=80'] }))
  t.match(inbound.message, '--inbound-http flag 1: inbound[0].target: "127.0.0.1:8080,port=80" is not host:port', 'inbound listeners take no suffix: the target\'s port is the app\'s')
})
