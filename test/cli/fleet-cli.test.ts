/**
 * `chaperone fleet …` as an operator runs it (the built bin) against a fleet agent living in this process (one for
 * every subtest), with real devices attesting to it over TCP: registered by the CLI, listed, banned and refused,
 * evicted and attesting again; `agent status` shows the fleet's refusals. Bad registrations are refused with their
 * codes, and an agent without `fleet:` says how to enable it.
 */
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import pino from 'pino'
import { Agent } from '../../agent/agent'
import { loadAgentConfig } from '../../agent/config'
import { AdminClient } from '../../agent/admin/client'
import type { DeviceMessage, FleetStatusMessage, ListDevicesMessage, RegisteredDeviceMessage } from '../../agent/admin/client'
import type { WorkloadApiStatusMessage } from '../../agent/admin/workload-api-message'
import { birthCredential, x509popAgentId } from '../../agent/upstream'
import { CLI_SKIP, runCli } from '../helpers/cli'
import type { Run } from '../helpers/cli'
import { FLEET_TD, startFleetStand } from '../agent/fleet/fixtures/fleet-stand'
import type { FleetStand } from '../agent/fleet/fixtures/fleet-stand'
import type { BirthCert } from '../../certs-test'

const dir = mkdtempSync(join(tmpdir(), 'chaperone-fleet-cli-'))
t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
let stand: FleetStand | undefined
t.before(async () => {
  if (CLI_SKIP === false) stand = await startFleetStand(t)
})

const fleet = (): FleetStand => stand as FleetStand
const adminSocket = (): string => join(fleet().dir, 'admin.sock')
const deviceId = (serial: string): string => `spiffe://${FLEET_TD.name}/device/${serial}`
const agentIdOf = (birth: BirthCert): string => x509popAgentId(FLEET_TD, birthCredential(birth.chain, birth.key)).toString()

async function chaperone (...args: string[]): Promise<Run> {
  return await runCli([...args, '--admin-socket', adminSocket()])
}

async function json<T> (...args: string[]): Promise<T> {
  const run = await chaperone(...args, '--json')
  if (run.status !== 0) throw new Error(`chaperone ${args.join(' ')} failed (${String(run.status)}): ${run.stderr}`)
  return JSON.parse(run.stdout) as T
}

/** What the admin API answered: the error's code, or 'ok'. */
async function codeOf (work: (client: AdminClient) => Promise<unknown>, socket = adminSocket()): Promise<string> {
  const client = new AdminClient(socket)
  try {
    return await work(client).then(() => 'ok', (err: { code?: string }) => err.code ?? 'no code')
  } finally {
    client.close()
  }
}

async function refusal (work: Promise<unknown>): Promise<{ code?: string, message?: string }> {
  return await work.then(() => ({ message: 'succeeded, but should have failed' }), (err: Error & { code?: string }) => err)
}

void t.test('fleet cli – register → attest → list → ban → refused → evict → attest again; agent status counts', { skip: CLI_SKIP }, async t => {
  const [one, two, three] = ['SN-C-0001', 'SN-C-0002', 'SN-C-0003'].map(serial => fleet().maker.issueBirthCert(serial))
  writeFileSync(join(dir, 'one.pem'), one.chainPem)

  // A serial as an operator may paste it: capitals, colons, leading zeros.
  const serialHex = BigInt(`0x${three.leaf.serialNumber}`).toString(16)
  const pasted = `00${serialHex.toUpperCase()}`.replace(/(..)(?!$)/g, '$1:')
  const [byCert, byCn, bySerial] = await Promise.all([
    json<RegisteredDeviceMessage>('fleet', 'register', '--id', deviceId('SN-C-0001'), '--birth-cert', join(dir, 'one.pem'), '--x509-ttl', '10m'),
    chaperone('fleet', 'register', '--id', deviceId('SN-C-0002'), '--cn', 'SN-C-0002'),
    json<RegisteredDeviceMessage>('fleet', 'register', '--id', deviceId('SN-C-0003'), '--serial', pasted)
  ])
  t.match(byCert, {
    agent_id: agentIdOf(one),
    alias: null,
    downstream: { spiffe_id: deviceId('SN-C-0001'), parent_id: agentIdOf(one), downstream: true, x509_svid_ttl: 600, selectors: ['x509pop:serialnumber:', 'x509pop:subject:cn:SN-C-0001'] }
  }, 'by birth certificate: a downstream entry parented on the x509pop agent ID the device will attest as')
  t.equal(byCn.status, 0, byCn.stderr)
  t.match(byCn.stdout, `Node alias    : ${deviceId('SN-C-0002')}/node-alias (entry `, 'by selectors: a node alias …')
  t.match(byCn.stdout, `parent spiffe://${FLEET_TD.name}/spire/server)\nSelector      : x509pop:subject:cn:SN-C-0002\n`, '… parented on the server ID, with the selectors')
  t.same(bySerial.downstream.selectors, [`x509pop:serialnumber:${serialHex.length % 2 === 0 ? serialHex : `0${serialHex}`}`], 'the serial written as SPIRE\'s x509pop writes it')

  const [first, second] = await Promise.all([[one, 'SN-C-0001'], [two, 'SN-C-0002']].map(async ([birth, serial]) =>
    await fleet().startDevice(birth as BirthCert, `${deviceId(serial as string)}/app`)))
  for (const device of [first, second]) t.equal(device.agent.ca.status().upstreamName, `SPIRE server ${fleet().address}`, 'the device attested and got its device CA')

  const [listed, text] = await Promise.all([json<ListDevicesMessage>('fleet', 'list'), chaperone('fleet', 'list')])
  t.same(listed.devices.map(d => [d.agent_id, d.downstream_ids, d.banned]).sort(), [[agentIdOf(one), [deviceId('SN-C-0001')], false], [agentIdOf(two), [deviceId('SN-C-0002')], false]].sort(),
    'fleet list: both devices, each with its downstream ID')
  t.ok(listed.devices.every(d => /^\d+$/.test(d.x509_svid_serial_number) && d.x509_svid_expires_at > Date.now() / 1000), 'with their agent SVIDs\' serials and expiries')
  t.same(listed.not_attested.map(e => e.spiffe_id), [deviceId('SN-C-0003')], 'and the registered device not attested yet')
  t.match(text.stdout, /^2 devices attested, 1 registered device not attested yet\n/)
  t.match(text.stdout, `\nRegistered, not attested yet:\n  ${deviceId('SN-C-0003')} (entry `)

  const banned = await json<DeviceMessage>('fleet', 'ban', agentIdOf(one))
  t.match(banned, { agent_id: agentIdOf(one), banned: true, x509_svid_serial_number: '' }, 'fleet ban: banned, its SVID serial emptied as SPIRE does')
  await first.agent.stop()
  t.match(await refusal(fleet().startDevice(one, `${deviceId('SN-C-0001')}/app`)), { code: 'ERR_NODE_ATTESTATION_DENIED', message: /agent is banned/ },
    'the banned device\'s next attestation is refused')
  const [status, statusText] = await Promise.all([json<WorkloadApiStatusMessage & { fleet: FleetStatusMessage }>('agent', 'status'), chaperone('agent', 'status')])
  t.match(status.fleet, { address: fleet().address, attested_devices: 2, banned_devices: 1, not_attested_devices: 1, attestations_refused: { banned: 1 } }, 'agent status: the fleet\'s devices and refusals')
  t.match(statusText.stdout,
    `\nFleet port               : ${fleet().address}\nFleet devices            : 2 attested (1 banned), 1 registered not attested yet\nAttestations refused     : banned 1\n`)

  const evicted = await chaperone('fleet', 'evict', agentIdOf(one))
  t.equal(evicted.status, 0, evicted.stderr)
  t.match(evicted.stdout, `evicted ${agentIdOf(one)}: `)
  const again = await fleet().startDevice(one, `${deviceId('SN-C-0001')}/app`)
  t.equal(again.agent.ca.status().upstreamName, `SPIRE server ${fleet().address}`, 'evicted, the device attests again and gets its device CA')
  t.match(await json<ListDevicesMessage>('fleet', 'list'), { devices: [{ banned: false }, { banned: false }] }, 'no longer banned')
})

void t.test('fleet cli – refused with their codes: bad IDs, no selector, bad selectors, unreadable birth certificates, unknown devices', { skip: CLI_SKIP }, async t => {
  writeFileSync(join(dir, 'garbage.pem'), 'not a certificate\n')
  const register = (...args: string[]): Promise<Run> => chaperone('fleet', 'register', ...args)
  const runs = await Promise.all([
    register('--id', 'device/SN-1', '--cn', 'SN-1'),
    register('--id', 'spiffe://other.example/device/SN-1', '--cn', 'SN-1'),
    register('--id', deviceId('SN-1')),
    register('--id', deviceId('SN-1'), '--birth-cert', join(dir, 'missing.pem')),
    chaperone('fleet', 'evict', `spiffe://${FLEET_TD.name}/spire/agent/x509pop/0000`)
  ])
  t.same(runs.map(run => run.status), [2, 2, 2, 2, 2], 'exit 2: bad input')
  const [badId, foreign, none, unreadable, unknown] = runs.map(run => run.stderr)
  t.match(badId, /invalid SPIFFE ID "device\/SN-1": scheme is missing/)
  t.match(foreign, /spiffe:\/\/other\.example\/device\/SN-1 is not in this agent's trust domain fleet\.example/)
  t.match(none, /registered by its birth certificate or by at least one x509pop selector/)
  t.match(unreadable, /cannot read the birth certificate .*missing\.pem: ENOENT/)
  t.match(unknown, /agent not found/)

  const id = deviceId('SN-R-0001')
  const codes = await Promise.all([
    codeOf(c => c.registerDevice({ spiffeId: 'device/SN-1', selectors: ['x509pop:subject:cn:SN-1'] })),
    codeOf(c => c.registerDevice({ spiffeId: 'spiffe://other.example/device/SN-1', selectors: ['x509pop:subject:cn:SN-1'] })),
    codeOf(c => c.registerDevice({ spiffeId: `spiffe://${FLEET_TD.name}/spire/device`, selectors: ['x509pop:subject:cn:SN-1'] })),
    codeOf(c => c.registerDevice({ spiffeId: id })),
    codeOf(c => c.registerDevice({ spiffeId: id, selectors: ['unix:uid:0'] })),
    codeOf(c => c.registerDevice({ spiffeId: id, selectors: ['x509pop:ca:fingerprint:abc'] })),
    codeOf(c => c.registerDevice({ spiffeId: id, birthCertPem: 'not a certificate' })),
    codeOf(c => c.registerDevice({ spiffeId: id, birthCertPem: fleet().maker.issueBirthCert('SN-R-0001').chainPem, selectors: ['x509pop:subject:cn:SN-R-0001'] })),
    codeOf(c => c.banDevice(`spiffe://${FLEET_TD.name}/app`)),
    codeOf(c => c.evictDevice(`spiffe://${FLEET_TD.name}/spire/agent/x509pop/0000`))
  ])
  t.same(codes, [
    'ERR_SPIFFE_ID_INVALID', 'ERR_FLEET_REGISTRATION_INVALID', 'ERR_FLEET_REGISTRATION_INVALID', 'ERR_FLEET_REGISTRATION_INVALID', 'ERR_FLEET_REGISTRATION_INVALID',
    'ERR_FLEET_REGISTRATION_INVALID', 'ERR_FLEET_BIRTH_CERT_INVALID', 'ERR_FLEET_REGISTRATION_INVALID', 'ERR_AGENT_INVALID', 'ERR_AGENT_NOT_FOUND'
  ], 'bad ID, another trust domain, /spire, no selector, not x509pop, a bad fingerprint, no certificate, both ways at once, not an agent ID, an unknown agent')

  // A fingerprint pasted with colons and capitals is SPIRE's lowercase hex; registering it again is a duplicate, and leaves no second alias.
  const fingerprint = createHash('sha1').update(fleet().maker.issuer.certDer).digest('hex')
  const pasted = fingerprint.toUpperCase().replace(/(..)(?!$)/g, '$1:')
  t.equal(await codeOf(c => c.registerDevice({ spiffeId: id, selectors: [`x509pop:ca:fingerprint:${pasted}`] })), 'ok')
  t.equal(await codeOf(c => c.registerDevice({ spiffeId: id, selectors: [`x509pop:ca:fingerprint:${fingerprint}`] })), 'ERR_ENTRY_DUPLICATE')
  const registered = fleet().agent.store.listEntries().filter(e => e.selectors.some(s => s.value === `ca:fingerprint:${fingerprint}`))
  t.same(registered.map(e => [e.spiffeId, e.parentId, e.downstream]), [[id, `${id}/node-alias`, true], [`${id}/node-alias`, `spiffe://${FLEET_TD.name}/spire/server`, false]], 'one alias, one downstream entry')
})

void t.test('fleet cli – an agent without fleet: says how to enable it', { skip: CLI_SKIP }, async t => {
  const plain = join(dir, 'plain')
  const agent = await Agent.start(loadAgentConfig(undefined, {
    trustDomain: 'plant.example', dataDir: join(plain, 'data'), socket: join(plain, 'workload.sock'), adminSocket: join(plain, 'admin.sock'), serverSocket: join(plain, 'server.sock')
  }), pino({ level: 'silent' }))
  t.teardown(async () => { await agent.stop() })
  const listed = await runCli(['fleet', 'list', '--admin-socket', join(plain, 'admin.sock')])
  t.equal(listed.status, 1, 'exit 1: not the input, the agent\'s configuration')
  t.match(listed.stderr, /this agent serves no fleet: add `fleet:` with `address` and `manufacturerBundleFile` to its configuration file/)
  t.equal(await codeOf(c => c.getFleetStatus(), join(plain, 'admin.sock')), 'ERR_FLEET_NOT_CONFIGURED')
})
