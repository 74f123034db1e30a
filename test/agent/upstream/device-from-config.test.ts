/**
 * deviceUpstreamFromConfig: the agent's `upstream:` settings (agent/config.ts) made into the CA's remote upstream.
 * The files are read at once, so a wrong one stops the agent at start with ERR_UPSTREAM_CONFIG_INVALID naming the
 * setting, the file and what is wrong with it; nothing is sent to the server here.
 */
import t from 'tap'
import { join } from 'node:path'
import { createTestCa, TestManufacturer } from '../../../certs-test'
import { parseTrustDomain } from '../../../spiffe'
import type { DeviceUpstreamConfig } from '../../../agent/config'
import { deviceUpstreamFromConfig } from '../../../agent/upstream'
import { thrown } from '../../helpers/errors'

const TD = parseTrustDomain('fleet.example')
const maker = new TestManufacturer()
const device = maker.issueBirthCert('SN-DEV-0001')

const dir = t.testdir({
  'fleet-bundle.pem': createTestCa(TD.name).certPem,
  'birth.pem': device.chainPem,
  'birth.key': device.keyPem,
  'other.key': maker.issueBirthCert('SN-DEV-0002').keyPem,
  'garbage.pem': 'not a PEM file\n'
})
const file = (name: string): string => join(dir, name)

const config: DeviceUpstreamConfig = {
  address: 'spire.fleet.example:8081',
  trustBundleFile: file('fleet-bundle.pem'),
  x509pop: { certFile: file('birth.pem'), keyFile: file('birth.key') },
  timeoutMs: 5000
}

void t.test('device from config – readable files make the remote upstream, named after the server', async t => {
  const upstream = deviceUpstreamFromConfig(config, TD)
  t.equal(upstream.name, 'SPIRE server spire.fleet.example:8081')
  t.equal(upstream.agentId, undefined, 'nothing is asked of the server yet')
})

void t.test('device from config – each unusable file is ERR_UPSTREAM_CONFIG_INVALID naming the setting, the file and the problem', async t => {
  const cases: Array<[string, Partial<DeviceUpstreamConfig>, RegExp | string]> = [
    ['a missing trust bundle', { trustBundleFile: file('absent.pem') }, `upstream.trustBundleFile ${file('absent.pem')} cannot be read (ENOENT)`],
    ['a directory as the trust bundle', { trustBundleFile: dir }, `upstream.trustBundleFile ${dir} cannot be read (EISDIR)`],
    ['a trust bundle without certificates', { trustBundleFile: file('garbage.pem') }, /^upstream\.trustBundleFile.*: X\.509 bundle for fleet\.example: no PEM certificates found$/],
    ['a missing birth certificate', { x509pop: { ...config.x509pop, certFile: file('absent.pem') } }, `upstream.x509pop.certFile ${file('absent.pem')} cannot be read (ENOENT)`],
    ['a missing birth key', { x509pop: { ...config.x509pop, keyFile: file('absent.key') } }, `upstream.x509pop.keyFile ${file('absent.key')} cannot be read (ENOENT)`],
    ['a certificate file without certificates', { x509pop: { ...config.x509pop, certFile: file('birth.key') } },
      `upstream.x509pop (${file('birth.key')}, ${file('birth.key')}): birth certificate: no certificate given`],
    ['a key file without a key', { x509pop: { ...config.x509pop, keyFile: file('garbage.pem') } },
      /^upstream\.x509pop \(.*birth\.pem, .*garbage\.pem\): birth certificate: unreadable PEM \(/],
    ['the key of another device', { x509pop: { ...config.x509pop, keyFile: file('other.key') } },
      `upstream.x509pop (${file('birth.pem')}, ${file('other.key')}): birth certificate: the key does not belong to the certificate (subject O=Chaperone Test Devices, CN=SN-DEV-0001)`]
  ]
  for (const [what, change, message] of cases) {
    const err = thrown(() => deviceUpstreamFromConfig({ ...config, ...change }, TD))
    t.equal(err.code, 'ERR_UPSTREAM_CONFIG_INVALID', what)
    if (typeof message === 'string') t.equal(err.message, message, what)
    else t.match(err.message, message, what)
  }
  // The trust bundle's content problems name the setting but not the file, unlike every other problem here.
  const err = thrown(() => deviceUpstreamFromConfig({ ...config, trustBundleFile: file('garbage.pem') }, TD))
  t.match(err.message, file('garbage.pem'), 'a trust bundle without certificates: the message names the file')
})
