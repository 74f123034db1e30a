import t from 'tap'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createTestCa } from '../../../certs-test'
import { loadAgentConfig } from '../../../agent/config'

// The config file's `federation:` section: relationships checked at start with the field named (a bad one never
// waits for the first fetch to be found), bootstrap bundles read and parsed, SPIRE's defaults for the timings.

function configFile (t: tap.Test, federation: object | undefined, files: Record<string, string> = {}): { file: string, dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-federation-cfg-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text)
  const file = join(dir, 'agent.json')
  writeFileSync(file, JSON.stringify({ trustDomain: 'plant-a.example', ...(federation === undefined ? {} : { federation }) }))
  return { file, dir }
}

const B = { trustDomain: 'plant-b.example', bundleEndpointUrl: 'https://plant-b.example:8443', profile: 'https_spiffe', endpointSpiffeId: 'spiffe://plant-b.example/spire/server' }

void t.test('federation config – SPIRE\'s defaults: refresh hint 5 min, polls at most once a minute, no relationships, no endpoint', async t => {
  const config = loadAgentConfig(configFile(t, undefined).file)
  t.same(config.federation, { refreshHintSeconds: 300, minimumRefreshMs: 60_000, relationships: [] })
})

void t.test('federation config – relationships with bootstrap bundles (spiffe and pem) are read and kept for the store', async t => {
  const pem = createTestCa('plant-c.example').certPem
  const { file, dir } = configFile(t, { refreshHint: '2m', minimumRefresh: '5s', relationships: [
    B,
    { trustDomain: 'plant-c.example', bundleEndpointUrl: 'https://c.example/b', profile: 'https_web', bundleFile: 'PLACEHOLDER', bundleFormat: 'pem' }
  ] }, { 'c.pem': pem })
  writeFileSync(file, readFileSync(file, 'utf8').replace('PLACEHOLDER', join(dir, 'c.pem')))
  const { federation } = loadAgentConfig(file)
  t.equal(federation.refreshHintSeconds, 120)
  t.equal(federation.minimumRefreshMs, 5000)
  t.same(federation.relationships.map(r => [r.trustDomain, r.profile, r.bundle?.format]), [['plant-b.example', 'https_spiffe', undefined], ['plant-c.example', 'https_web', 'pem']])
  t.equal(federation.relationships[1].bundle?.bundle, pem, 'the bundle file\'s text')
})

void t.test('federation config – a bad relationship stops the agent at start, naming the field and the reason', async t => {
  const bad = (relationship: object, files: Record<string, string> = {}): string => configFile(t, { relationships: [B, relationship] }, files).file
  t.throws(() => loadAgentConfig(bad({ ...B, trustDomain: 'plant-c.example', bundleEndpointUrl: 'http://c.example' })), /federation\/relationships\/1.*https scheme|relationships.*1.*https scheme/s)
  t.throws(() => loadAgentConfig(bad({ ...B, trustDomain: 'plant-c.example', endpointSpiffeId: undefined })), /needs the endpoint's SPIFFE ID/)
  t.throws(() => loadAgentConfig(bad({ ...B, trustDomain: 'plant-a.example' })), /own trust domain/)
  t.throws(() => loadAgentConfig(bad(B)), /plant-b\.example a second time/)
  t.throws(() => loadAgentConfig(bad({ ...B, trustDomain: 'plant-c.example', bundleFile: '/nonexistent/c.json' })), /bundleFile \/nonexistent\/c\.json.*ENOENT/)
  const { file, dir } = configFile(t, { relationships: [{ ...B, bundleFile: 'X' }] }, { 'b.json': '{"keys": 3}' })
  writeFileSync(file, readFileSync(file, 'utf8').replace('"X"', JSON.stringify(join(dir, 'b.json'))))
  t.throws(() => loadAgentConfig(file), /bundleFile .*b\.json/, 'a bundle file that does not parse')
  t.throws(() => loadAgentConfig(bad({ ...B, trustDomain: 'plant-c.example', extra: 1 })), /extra|additional/)
})
