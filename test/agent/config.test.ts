import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadAgentConfig } from '../../agent/config'
import { thrown } from '../helpers/errors'

void t.test('agent config – defaults come from the schema, SPIRE-like', async t => {
  const config = loadAgentConfig(undefined, { trustDomain: 'plant.example' })
  t.equal(config.trustDomain.name, 'plant.example')
  t.equal(config.dataDir, '/var/lib/chaperone/agent')
  t.equal(config.socket, '/run/chaperone/workload.sock')
  t.equal(config.adminSocket, '/run/chaperone/admin.sock')
  t.equal(config.serverSocket, '/tmp/spire-server/private/api.sock', 'SPIRE server\'s own default')
  t.equal(config.serverSocketGroup, undefined)
  t.equal(config.serverSocketAdminWorkloads, false, 'admin workloads are not let in unless asked')
  t.equal(config.logLevel, 'info')
  t.same(config.ca, { keyType: 'ec-p256', ttlSeconds: 86400 })
  t.same(config.svid, { x509TtlSeconds: 3600, jwtTtlSeconds: 300, jwtKeyType: 'ec-p256' })
  t.ok(Object.isFrozen(config) && Object.isFrozen(config.ca), 'frozen')
})

void t.test('agent config – a YAML file, with flags overriding it', async t => {
  const dir = t.testdir({
    'agent.yaml': [
      'trustDomain: plant.example',
      'dataDir: /srv/agent',
      'serverSocket: /run/spire/api.sock',
      'serverSocketGroup: orchestrator',
      'serverSocketAdminWorkloads: true',
      'ca:',
      '  keyType: rsa-2048',
      '  ttl: 48h',
      '  upstream: { certFile: /etc/up.pem, keyFile: /etc/up.key }',
      'svid:',
      '  x509Ttl: 1h30m',
      '  jwtTtl: 120',
      ''
    ].join('\n')
  })
  const config = loadAgentConfig(join(dir, 'agent.yaml'), { dataDir: '/override', adminSocketGroup: 'edge' })
  t.equal(config.dataDir, '/override')
  t.equal(config.adminSocketGroup, 'edge')
  t.equal(config.serverSocket, '/run/spire/api.sock')
  t.equal(config.serverSocketGroup, 'orchestrator')
  t.equal(config.serverSocketAdminWorkloads, true)
  t.same(config.ca, { keyType: 'rsa-2048', ttlSeconds: 172800, upstream: { certFile: '/etc/up.pem', keyFile: '/etc/up.key' } })
  t.equal(config.svid.x509TtlSeconds, 5400)
  t.equal(config.svid.jwtTtlSeconds, 120)
})

/** The device role, as an operator writes it. */
const DEVICE = [
  'trustDomain: fleet.example',
  'upstream:',
  '  address: spire.fleet.example:8081',
  '  trustBundleFile: /etc/chaperone/fleet-bundle.pem',
  '  x509pop: { certFile: /etc/chaperone/birth.pem, keyFile: /etc/chaperone/birth.key }',
  ''
].join('\n')

void t.test('agent config – upstream: the device role, its timeout 30 s unless set', async t => {
  const dir = t.testdir({ 'device.yaml': DEVICE, 'timeout.yaml': DEVICE + '  timeout: 10s\n', 'ipv6.yaml': DEVICE.replace('spire.fleet.example:8081', '"[fd00::1]:8081"') })
  const config = loadAgentConfig(join(dir, 'device.yaml'))
  t.same(config.upstream, {
    address: 'spire.fleet.example:8081',
    trustBundleFile: '/etc/chaperone/fleet-bundle.pem',
    x509pop: { certFile: '/etc/chaperone/birth.pem', keyFile: '/etc/chaperone/birth.key' },
    timeoutMs: 30_000
  })
  t.equal(config.ca.upstream, undefined)
  t.ok(Object.isFrozen(config.upstream) && Object.isFrozen(config.upstream?.x509pop), 'frozen')
  t.equal(loadAgentConfig(join(dir, 'timeout.yaml')).upstream?.timeoutMs, 10_000, 'timeout: 10s')
  t.equal(loadAgentConfig(join(dir, 'ipv6.yaml')).upstream?.address, '[fd00::1]:8081', 'an IPv6 address in brackets')
  t.equal(loadAgentConfig(undefined, { trustDomain: 'plant.example' }).upstream, undefined, 'no upstream: the agent is its own root')
})

void t.test('agent config – every problem is named with file:line:column or the flag', async t => {
  const dir = t.testdir({})
  const file = join(dir, 'agent.yaml')
  const cases: Array<[string, Record<string, string>, RegExp[]]> = [
    ['trustDomain: plant.example\nca:\n  keytype: ec\n', {}, [/agent\.yaml:3:3: ca\.keytype: unknown field/]],
    ['trustDomain: plant.example\nca:\n  keyType: ed25519\n', {}, [/agent\.yaml:3:12: ca\.keyType: must be one of "ec-p256", "rsa-2048"/]],
    ['trustDomain: plant.example\nsvid:\n  x509Ttl: 1 hour\n', {}, [/agent\.yaml:3:12: svid\.x509Ttl: must be a duration: whole seconds \(30\) or 30s, 5m, 1h, 1h30m, not "1 hour"$/m]],
    ['dataDir: /x\n', {}, [/agent\.yaml:1:1: missing required field "trustDomain"/]],
    ['trustDomain: Plant.Example\n', {}, [/agent\.yaml:1:14: trustDomain: invalid trust domain "Plant\.Example".*lowercase/]],
    ['trustDomain: plant.example\n', { trustDomain: 'bad td' }, [/--trust-domain: trustDomain: invalid trust domain/]],
    ['trustDomain: plant.example\n', { logLevel: 'loud' }, [/--log-level: logLevel: must be one of/]],
    ['trustDomain: plant.example\n', { serverSocketGroup: 'a b' }, [/--server-socket-group: serverSocketGroup: must match pattern/]],
    ['trustDomain: plant.example\nserverSocket: ""\n', {}, [/agent\.yaml:2:15: serverSocket: must NOT have fewer than 1 characters/]],
    ['trustDomain: plant.example\nca: { ttl: 1h }\nsvid: { x509Ttl: 2h }\n', {}, [/svid\.x509Ttl: must be shorter than ca\.ttl/]],
    ['trustDomain: [unclosed\n', {}, [/agent\.yaml:2:1:/]],
    ['trustDomain: a\ntrustDomain: b\n', {}, [/agent\.yaml:2:1: .*[Mm]ap keys must be unique/]],
    ['- a list\n', {}, [/must be a mapping/]],
    [DEVICE.replace(/ {2}trustBundleFile: .*\n/, ''), {}, [/agent\.yaml:3:3: upstream: missing required field "trustBundleFile"/]],
    [DEVICE.replace(', keyFile: /etc/chaperone/birth.key', ''), {}, [/agent\.yaml:5:12: upstream\.x509pop: missing required field "keyFile"/]],
    [DEVICE.replace('spire.fleet.example:8081', 'spire.fleet.example'), {}, [/agent\.yaml:3:12: upstream\.address: must be host:port \(a name, an IPv4 address or an \[IPv6\] address, and a port from 1 to 65535\), e\.g\. spire\.fleet\.example:8081, not "spire\.fleet\.example"/]],
    [DEVICE.replace('spire.fleet.example:8081', 'spire.fleet.example:99999'), {}, [/agent\.yaml:3:12: upstream\.address: must be host:port .*, not "spire\.fleet\.example:99999"/]],
    [DEVICE.replace('spire.fleet.example:8081', 'spire.fleet.example:0'), {}, [/agent\.yaml:3:12: upstream\.address: must be host:port .*, not "spire\.fleet\.example:0"/]],
    [`${DEVICE}  timeout: 30 seconds\n`, {}, [/agent\.yaml:6:12: upstream\.timeout: must be a duration/]],
    [`${DEVICE}ca:\n  upstream: { certFile: /etc/up.pem, keyFile: /etc/up.key }\n`, {}, [
      /agent\.yaml:3:3: upstream: and ca\.upstream exclude each other: the CA's authorities are signed by the fleet's SPIRE server \(upstream\) or by CA files \(ca\.upstream\), not both/
    ]]
  ]
  for (const [text, flags, reasons] of cases) {
    writeFileSync(file, text)
    const err = thrown(() => loadAgentConfig(file, flags))
    t.equal(err.code, 'ERR_CONFIG_INVALID', JSON.stringify(text))
    for (const reason of reasons) t.match(err.message, reason, JSON.stringify(text))
  }
  const missing = thrown(() => loadAgentConfig(join(dir, 'absent.yaml')))
  t.match(missing.message, /absent\.yaml: cannot read the file: ENOENT/)
  const several = thrown(() => loadAgentConfig(undefined, {}))
  t.match(several.message, /command-line flags: missing required field "trustDomain"/)
})
