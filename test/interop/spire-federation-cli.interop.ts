/**
 * SPIRE's own server CLI, `spire-server federation create|list|show|update|delete|refresh` at SPIRE_VERSION, pointed at
 * the Chaperone agent's SPIRE server API (the TrustDomain service, with the agent's federation behind RefreshBundle),
 * and the same commands against a real SPIRE server in the same test: their exit status, stdout and stderr must be
 * the same. Relationships are made with flags (https_web; https_spiffe with a bootstrap bundle file in the pem and the
 * spiffe formats) and with -data JSON, listed, shown, updated, refused and deleted alike. `refresh` of an endpoint that
 * is not there fails on both with the CLI's words for an INTERNAL error (the reason after them is each fetcher's own);
 * `refresh` of a real bundle endpoint (ours, BundleEndpointServer, https_spiffe) works on both, and the agent holds
 * the bundle the endpoint serves at that moment. Last, on our side only: the relationships of the agent's config file
 * are listed, and the CLI's updates and deletes of them are refused, saying why. Part of `npm run test:interop`.
 */
import t from 'tap'
import type { Test } from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { AgentCa } from '../../agent/ca'
import { BundleEndpointServer } from '../../agent/federation/bundle-endpoint-server'
import { SpireServerApi } from '../../agent/spire-api'
import { parseTrustDomain } from '../../spiffe/id'
import { SpiffeBundle } from '../../spiffe/spiffe-bundle'
import { run } from '../helpers/command'
import type { CommandResult } from '../helpers/command'
import { startAgentStand, TRUST_DOMAIN as TD } from './agent-stand'
import { interopSkip, SPIRE_VERSION } from './peers'
import { startSpireStand } from './spire-stand'

const skip = interopSkip()
const quiet = pino({ level: 'silent' })
/** A bundle endpoint nobody serves: connections are refused at once. */
const NOWHERE = 'https://127.0.0.1:1/'

/** Another trust domain's CA serving its bundle endpoint (https_spiffe) on 127.0.0.1; `serve` replaces what it serves. */
async function startRemote (t: Test, dir: string): Promise<{ ca: AgentCa, url: string, serve: (bundle: SpiffeBundle) => void }> {
  const ca = await AgentCa.open({ trustDomain: parseTrustDomain('remote.example'), dataDir: join(dir, 'remote-ca'), logger: quiet })
  let served: SpiffeBundle | undefined
  const endpoint = await BundleEndpointServer.start({ host: '127.0.0.1', port: 0, profile: { kind: 'https_spiffe' }, ca, store: { ownBundle: bundle => served ?? bundle }, logger: quiet })
  t.teardown(async () => { await endpoint.stop(); ca.close() })
  return { ca, url: `https://${endpoint.address}/`, serve: bundle => { served = bundle } }
}

void t.test(`spire-server ${SPIRE_VERSION} federation commands against Chaperone's server socket, compared with a real SPIRE server`, { skip, timeout: 600_000 }, async t => {
  const spire = await startSpireStand(t, { trustDomain: TD })
  const stand = await startAgentStand(t, `spiffe://${TD}/interop`)
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-federation-cli-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  // The agent's SPIRE server API, with the agent's federation behind RefreshBundle, on a socket of its own.
  const api = await SpireServerApi.start({
    socketPath: join(dir, 'api.sock'), limits: stand.agent.config.workloadApi, trustDomain: stand.agent.config.trustDomain,
    store: stand.agent.store, ca: stand.agent.ca, logger: quiet, federation: stand.agent.federation
  })
  t.teardown(async () => { await api.stop() })
  const ours = async (args: readonly string[]): Promise<CommandResult> => await run(spire.serverBinary, [...args, '-socketPath', api.socketPath], { timeoutMs: 30_000 })
  const theirs = async (args: readonly string[]): Promise<CommandResult> => await spire.serverCommand(args)
  /** Runs `args` against both; expects the same exit status, stdout and stderr; answers ours. */
  const same = async (t: Test, args: readonly string[], what: string): Promise<CommandResult> => {
    const [a, b] = [await theirs(args), await ours(args)]
    t.same({ status: b.status, stdout: b.stdout, stderr: b.stderr }, { status: a.status, stdout: a.stdout, stderr: a.stderr }, `${what}: the same as SPIRE's`)
    return b
  }

  const remote = await startRemote(t, dir)
  const pem = join(dir, 'remote.pem')
  writeFileSync(pem, remote.ca.bundle().x509.toPem())
  const spiffeDoc = join(dir, 'remote.json')
  writeFileSync(spiffeDoc, remote.ca.bundle().marshal())
  const spiffeProfile = (name: string): string[] => ['-bundleEndpointProfile', 'https_spiffe', '-endpointSpiffeID', `spiffe://${name}/spire/server`]

  await t.test('federation create: https_web; https_spiffe with a pem and with a spiffe bundle; -data JSON', async t => {
    const created = await same(t, ['federation', 'create', '-trustDomain', 'a-web.example', '-bundleEndpointURL', NOWHERE, '-bundleEndpointProfile', 'https_web'], 'https_web')
    t.equal(created.stdout, `\nTrust domain              : a-web.example\nBundle endpoint URL       : ${NOWHERE}\nBundle endpoint profile   : https_web\n`)
    await same(t, ['federation', 'create', '-trustDomain', 'b-pem.example', '-bundleEndpointURL', NOWHERE, ...spiffeProfile('b-pem.example'),
      '-trustDomainBundlePath', pem, '-trustDomainBundleFormat', 'pem'], 'https_spiffe with a pem bundle')
    await same(t, ['federation', 'create', '-trustDomain', 'c-spiffe.example', '-bundleEndpointURL', NOWHERE, ...spiffeProfile('c-spiffe.example'),
      '-trustDomainBundlePath', spiffeDoc, '-trustDomainBundleFormat', 'spiffe'], 'https_spiffe with a spiffe bundle')
    t.same(stand.agent.store.findFederatedBundle('b-pem.example')?.bundle.x509.authorities.map(c => c.fingerprint256), remote.ca.bundle().x509.authorities.map(c => c.fingerprint256),
      'the pem bundle is the trust domain\'s federated bundle')
    t.equal(stand.agent.store.findFederatedBundle('c-spiffe.example')?.bundle.jwt.size, remote.ca.bundle().jwt.size, 'the spiffe one with its JWT keys')
    const data = join(dir, 'relationships.json')
    writeFileSync(data, JSON.stringify({
      federationRelationships: [
        { trustDomain: 'd-data.example', bundleEndpointURL: NOWHERE, bundleEndpointProfile: 'https_web' },
        { trustDomain: 'e-data.example', bundleEndpointURL: NOWHERE, bundleEndpointProfile: 'https_spiffe', endpointSPIFFEID: 'spiffe://e-data.example/spire/server',
          trustDomainBundle: JSON.parse(remote.ca.bundle().marshal()) as unknown, trustDomainBundleFormat: 'spiffe' }
      ]
    }))
    await same(t, ['federation', 'create', '-data', data], '-data with two relationships')
  })

  await t.test('federation create refused: our own trust domain, one that exists', async t => {
    const own = await same(t, ['federation', 'create', '-trustDomain', TD, '-bundleEndpointURL', NOWHERE, '-bundleEndpointProfile', 'https_web'], 'our own trust domain')
    t.match(own.stderr, 'Failed to create the following federation relationship (code: InvalidArgument, msg: "unable to create federation relationship for server trust domain")')
    await same(t, ['federation', 'create', '-trustDomain', 'a-web.example', '-bundleEndpointURL', NOWHERE, '-bundleEndpointProfile', 'https_web'], 'an existing one')
  })

  await t.test('federation list and show', async t => {
    const listed = await same(t, ['federation', 'list'], 'list')
    t.match(listed.stdout, /^Found 5 federation relationships\n/)
    await same(t, ['federation', 'show', '-trustDomain', 'b-pem.example'], 'show')
    await same(t, ['federation', 'show', '-trustDomain', 'c-spiffe.example', '-output', 'json'], 'show -output json (with the bundle)')
    await same(t, ['federation', 'show', '-trustDomain', 'nowhere.example'], 'show of none')
  })

  await t.test('federation update: the endpoint, the profile, the bundle; one that does not exist', async t => {
    const updated = await same(t, ['federation', 'update', '-trustDomain', 'a-web.example', '-bundleEndpointURL', 'https://127.0.0.1:2/v2', ...spiffeProfile('a-web.example'),
      '-trustDomainBundlePath', pem], 'to https_spiffe with a bundle')
    t.match(updated.stdout, 'Bundle endpoint profile   : https_spiffe\nEndpoint SPIFFE ID        : spiffe://a-web.example/spire/server\n')
    t.ok(stand.agent.store.findFederatedBundle('a-web.example') !== undefined, 'the bundle is set')
    await same(t, ['federation', 'update', '-trustDomain', 'a-web.example', '-bundleEndpointURL', NOWHERE, '-bundleEndpointProfile', 'https_web'], 'back to https_web')
    await same(t, ['federation', 'update', '-trustDomain', 'nowhere.example', '-bundleEndpointURL', NOWHERE, '-bundleEndpointProfile', 'https_web'], 'one that does not exist')
    await same(t, ['federation', 'list'], 'list after the updates')
  })

  await t.test('federation refresh: an endpoint that is not there, a real one, a trust domain without a relationship', async t => {
    const [a, b] = [await theirs(['federation', 'refresh', '-id', 'spiffe://a-web.example']), await ours(['federation', 'refresh', '-id', 'spiffe://a-web.example'])]
    const internal = /^Error: failed to refresh bundle: rpc error: code = Internal desc = failed to refresh bundle: \S/
    t.equal(a.status, 1, 'SPIRE: fails')
    t.match(a.stderr, internal, `SPIRE: ${a.stderr.trim()}`)
    t.equal(b.status, 1, 'ours: fails')
    t.match(b.stderr, internal, `ours: ${b.stderr.trim()}`)

    await same(t, ['federation', 'create', '-trustDomain', 'remote.example', '-bundleEndpointURL', remote.url, ...spiffeProfile('remote.example'), '-trustDomainBundlePath', pem], 'the real endpoint')
    const now = remote.ca.bundle()
    remote.serve(new SpiffeBundle(now.trustDomain, { x509: now.x509, jwt: now.jwt, sequence: 4242, refreshHintSeconds: 77 }))
    const refreshed = await same(t, ['federation', 'refresh', '-id', 'spiffe://remote.example'], 'refresh of the real endpoint')
    t.equal(refreshed.stdout, 'Bundle refreshed\n')
    const held = stand.agent.store.findFederatedBundle('remote.example')?.bundle
    t.match({ sequence: held?.sequence, refreshHintSeconds: held?.refreshHintSeconds }, { sequence: 4242, refreshHintSeconds: 77 }, 'the agent holds the bundle the endpoint serves now')

    await same(t, ['federation', 'refresh', '-id', 'spiffe://nowhere.example'], 'a trust domain without a relationship')
  })

  await t.test('federation delete, and of one that does not exist', async t => {
    const deleted = await same(t, ['federation', 'delete', '-id', 'b-pem.example'], 'delete')
    t.equal(deleted.stdout, 'federation relationship deleted.\n')
    await same(t, ['federation', 'delete', '-id', 'b-pem.example'], 'delete again')
    await same(t, ['federation', 'list'], 'list after the delete')
  })

  await t.test('ours only: the config file\'s relationships are listed, and refused to the CLI\'s updates and deletes', async t => {
    stand.agent.store.relationships.create({ trustDomain: 'f-config.example', bundleEndpointUrl: NOWHERE, profile: 'https_web' }, { source: 'config' })
    t.match((await ours(['federation', 'show', '-trustDomain', 'f-config.example'])).stdout, 'Trust domain              : f-config.example\n')
    const update = await ours(['federation', 'update', '-trustDomain', 'f-config.example', '-bundleEndpointURL', 'https://127.0.0.1:3/', '-bundleEndpointProfile', 'https_web'])
    t.equal(update.status, 1)
    t.match(update.stderr, 'Failed to update the following federation relationship (code: FailedPrecondition, msg: "failed to update federation relationship: ' +
      'the federation relationship with f-config.example is defined in the agent\'s config file: it is changed there (federation.relationships), then the agent restarted")')
    const deleted = await ours(['federation', 'delete', '-id', 'f-config.example'])
    t.equal(deleted.status, 1)
    t.match(deleted.stderr, 'failed to delete federation relationship "f-config.example": failed to delete federation relationship: the federation relationship with f-config.example is defined in the agent\'s config file')
    t.equal(stand.agent.store.relationships.get('f-config.example').bundleEndpointUrl, NOWHERE, 'unchanged')
  })
})
