import t from 'tap'
import type { AttestationInput } from '../../../agent/store'
import type { AgentMessage } from '../../../agent/spire-api/messages'
import { CODE, TD, id, splitId, startSpireApiStand } from './fixtures/spire-api-stand'
import type { SpireApiStand } from './fixtures/spire-api-stand'

// SPIRE's Agent service on the SPIRE server socket: this node's agent first, so that an orchestrator learns the
// parent ID its entries need, then the agents attested to it as the fleet's upstream; filters, masks and paging as
// SPIRE's over all of them; DeleteAgent and BanAgent on the attested ones.

void t.test('agent service – ListAgents, GetAgent, CountAgents describe this node\'s agent', async t => {
  const stand = await startSpireApiStand(t)
  const agentId = stand.agent.store.agentId
  t.match(agentId, new RegExp(`^spiffe://${TD.replace('.', '\\.')}/spire/agent/chaperone/.+`))
  const described: AgentMessage = {
    id: splitId(agentId), attestation_type: 'chaperone', x509svid_serial_number: '', x509svid_expires_at: 0, selectors: [], banned: false, can_reattest: false
  }
  t.same(await stand.call('ListAgents', {}, 'agent'), { agents: [described], next_page_token: '' })
  t.same(await stand.call('GetAgent', { id: splitId(agentId) }, 'agent'), described)
  t.same(await stand.call('CountAgents', {}, 'agent'), { count: 1 })
  t.same(await stand.call('GetAgent', { id: splitId(agentId), output_mask: {} }, 'agent'), { ...described, attestation_type: '' }, 'the output mask applies; the ID stays')

  const first = await stand.call<{ agents: AgentMessage[], next_page_token: string }>('ListAgents', { page_size: 1 }, 'agent')
  t.same(first.agents, [described])
  t.not(first.next_page_token, '', 'a non-empty page carries a token')
  t.same(await stand.call('ListAgents', { page_size: 1, page_token: first.next_page_token }, 'agent'), { agents: [], next_page_token: '' }, 'the walk ends empty')

  const filters: Array<[string, object, number]> = [
    ['by attestation type', { by_attestation_type: 'chaperone' }, 1],
    ['by another attestation type', { by_attestation_type: 'x509pop' }, 0],
    ['banned', { by_banned: { value: true } }, 0],
    ['not banned', { by_banned: { value: false } }, 1],
    ['can re-attest', { by_can_reattest: { value: true } }, 0],
    ['by selector', { by_selector_match: { selectors: [{ type: 'unix', value: 'uid:0' }], match: 'MATCH_ANY' } }, 0],
    ['expires before', { by_expires_before: '2030-01-02 15:04:05 +0000 +00' }, 1]
  ]
  for (const [what, filter, count] of filters) {
    t.same(await stand.call('CountAgents', { filter }, 'agent'), { count }, `count ${what}`)
    t.equal((await stand.call<{ agents: AgentMessage[] }>('ListAgents', { filter }, 'agent')).agents.length, count, `list ${what}`)
  }
  t.same(await stand.failure('CountAgents', { filter: { by_selector_match: { selectors: [{ type: '', value: 'x' }] } } }, 'agent'), {
    code: CODE.INVALID_ARGUMENT, details: 'failed to parse selectors: missing selector type'
  })
})

void t.test('agent service – GetAgent refuses what is not an agent ID, and knows no other agent', async t => {
  const stand = await startSpireApiStand(t)
  const failures: Array<[object, number, string]> = [
    [{}, CODE.INVALID_ARGUMENT, 'invalid agent ID: request must specify SPIFFE ID'],
    [{ id: id('/spire/agent/chaperone/x', 'other.example') }, CODE.INVALID_ARGUMENT, 'invalid agent ID: "spiffe://other.example/spire/agent/chaperone/x" is not a member of trust domain "plant.example"'],
    [{ id: id('') }, CODE.INVALID_ARGUMENT, 'invalid agent ID: "spiffe://plant.example" is not an agent in trust domain "plant.example"; path is empty'],
    [{ id: id('/web') }, CODE.INVALID_ARGUMENT, 'invalid agent ID: "spiffe://plant.example/web" is not an agent in trust domain "plant.example"; path is not in the agent namespace'],
    [{ id: id('/spire/agent/x509pop/another-device') }, CODE.NOT_FOUND, 'agent not found']
  ]
  for (const [request, code, details] of failures) t.same(await stand.failure('GetAgent', request, 'agent'), { code, details }, details)
})

const unix = (iso: string): number => Date.parse(iso) / 1000
const DEVICE_A = `spiffe://${TD}/spire/agent/x509pop/dev-a`
const DEVICE_B = `spiffe://${TD}/spire/agent/x509pop/dev-b`
const DEVICE_C = `spiffe://${TD}/spire/agent/join_token/tok-c`
const F1 = 'x509pop:ca:fingerprint:f1'

/** Three attested devices: two x509pop ones sharing a CA fingerprint selector, and a join-token one without selectors. */
function recordDevices (stand: SpireApiStand): void {
  const record = (input: AttestationInput): unknown => stand.agent.store.agents.record(input)
  record({ spiffeId: DEVICE_A, attestationType: 'x509pop', selectors: ['x509pop:subject:cn:A', F1], serialNumber: 0x10n, expiresAt: unix('2030-01-01T00:00:00Z'), canReattest: true })
  record({ spiffeId: DEVICE_B, attestationType: 'x509pop', selectors: ['x509pop:subject:cn:B', F1], serialNumber: 0x20n, expiresAt: unix('2031-01-01T00:00:00Z'), canReattest: true })
  record({ spiffeId: DEVICE_C, attestationType: 'join_token', selectors: [], serialNumber: 0x30n, expiresAt: unix('2029-01-01T00:00:00Z'), canReattest: false })
}

const sel = (text: string): { type: string, value: string } => ({ type: text.slice(0, text.indexOf(':')), value: text.slice(text.indexOf(':') + 1) })
const ids = (agents: AgentMessage[]): string[] => agents.map(agent => `spiffe://${agent.id?.trust_domain ?? ''}${agent.id?.path ?? ''}`)

void t.test('agent service – attested agents are listed, counted and shown after this node\'s agent, as SPIRE shows them', async t => {
  const stand = await startSpireApiStand(t)
  recordDevices(stand)
  const own = stand.agent.store.agentId
  const deviceA: AgentMessage = {
    id: splitId(DEVICE_A),
    attestation_type: 'x509pop',
    x509svid_serial_number: '16',
    x509svid_expires_at: unix('2030-01-01T00:00:00Z'),
    selectors: [sel(F1), sel('x509pop:subject:cn:A')],
    banned: false,
    can_reattest: true
  }
  const listed = await stand.call<{ agents: AgentMessage[], next_page_token: string }>('ListAgents', {}, 'agent')
  t.same(ids(listed.agents), [own, DEVICE_C, DEVICE_A, DEVICE_B], 'this node\'s agent first, then the attested ones by ID')
  t.same(listed.agents[2], deviceA)
  t.same(await stand.call('CountAgents', {}, 'agent'), { count: 4 })
  t.same(await stand.call('GetAgent', { id: splitId(DEVICE_A) }, 'agent'), deviceA)
  t.same(await stand.call('GetAgent', { id: splitId(DEVICE_A), output_mask: { selectors: true } }, 'agent'), {
    ...deviceA, attestation_type: '', x509svid_serial_number: '', x509svid_expires_at: 0, can_reattest: false
  }, 'the output mask applies')

  const filters: Array<[string, object, string[]]> = [
    ['by attestation type', { by_attestation_type: 'x509pop' }, [DEVICE_A, DEVICE_B]],
    ['can re-attest', { by_can_reattest: { value: true } }, [DEVICE_A, DEVICE_B]],
    ['cannot re-attest', { by_can_reattest: { value: false } }, [own, DEVICE_C]],
    ['not banned', { by_banned: { value: false } }, [own, DEVICE_C, DEVICE_A, DEVICE_B]],
    ['banned', { by_banned: { value: true } }, []],
    ['expires before', { by_expires_before: '2030-06-01 00:00:00 +0000 +00' }, [own, DEVICE_C, DEVICE_A]],
    ['expires before, at A\'s expiry (another zone)', { by_expires_before: '2030-01-01 02:00:00 +0200 +02' }, [own, DEVICE_C]],
    ['expires before, a second after', { by_expires_before: '2030-01-01 00:00:00.5 +0000 +00' }, [own, DEVICE_C, DEVICE_A]],
    ['expires before, unreadable (Go\'s zero time: no filter)', { by_expires_before: '2030-02-30 00:00:00 +0000 +00' }, [own, DEVICE_C, DEVICE_A, DEVICE_B]],
    ['expires before 1970', { by_expires_before: '1969-12-31 00:00:00 +0000 +00' }, []],
    ['selector, any', { by_selector_match: { selectors: [sel('x509pop:subject:cn:B'), sel('unix:uid:0')], match: 'MATCH_ANY' } }, [DEVICE_B]],
    ['selector, superset', { by_selector_match: { selectors: [sel(F1)], match: 'MATCH_SUPERSET' } }, [DEVICE_A, DEVICE_B]],
    ['selector, exact', { by_selector_match: { selectors: [sel(F1), sel('x509pop:subject:cn:A')], match: 'MATCH_EXACT' } }, [DEVICE_A]],
    ['selector, exact, too few', { by_selector_match: { selectors: [sel(F1)], match: 'MATCH_EXACT' } }, []],
    ['selector, subset', { by_selector_match: { selectors: [sel(F1), sel('x509pop:subject:cn:A'), sel('x509pop:subject:cn:Z')], match: 'MATCH_SUBSET' } }, [DEVICE_A]],
    ['selector, subset, too few', { by_selector_match: { selectors: [sel(F1)], match: 'MATCH_SUBSET' } }, []],
    ['all together', { by_attestation_type: 'x509pop', by_expires_before: '2030-06-01 00:00:00 +0000 +00', by_selector_match: { selectors: [sel(F1)], match: 'MATCH_ANY' } }, [DEVICE_A]]
  ]
  for (const [what, filter, expected] of filters) {
    t.same(await stand.call('CountAgents', { filter }, 'agent'), { count: expected.length }, `count ${what}`)
    t.same(ids((await stand.call<{ agents: AgentMessage[] }>('ListAgents', { filter }, 'agent')).agents), expected, `list ${what}`)
  }
  const empty = { filter: { by_selector_match: { selectors: [], match: 'MATCH_ANY' } } }
  t.same(await stand.failure('CountAgents', empty, 'agent'), {
    code: CODE.INTERNAL, details: 'failed to count agents: rpc error: code = InvalidArgument desc = cannot list by empty selectors set'
  })
  t.same(await stand.failure('ListAgents', empty, 'agent'), {
    code: CODE.INTERNAL, details: 'failed to list agents: rpc error: code = InvalidArgument desc = cannot list by empty selectors set'
  })
})

void t.test('agent service – paging walks every agent; an EXACT or SUBSET match that empties a page cuts the next', async t => {
  const stand = await startSpireApiStand(t)
  recordDevices(stand)
  type Page = { agents: AgentMessage[], next_page_token: string }
  const walk = async (request: object): Promise<string[][]> => {
    const pages: string[][] = []
    let token = ''
    do {
      const page = await stand.call<Page>('ListAgents', { ...request, page_token: token }, 'agent')
      pages.push(ids(page.agents))
      token = page.next_page_token
      if (page.agents.length > 0) t.not(token, '', 'a non-empty page carries a token')
    } while (token !== '' && pages.length < 10)
    return pages
  }
  t.same(await walk({ page_size: 2 }), [[stand.agent.store.agentId, DEVICE_C], [DEVICE_A, DEVICE_B], []])
  t.same(await walk({ page_size: 3 }), [[stand.agent.store.agentId, DEVICE_C, DEVICE_A], [DEVICE_B], []])
  // The first pass picks A and B (both have F1); A's page is emptied by the second (cn:A is not given), so B's is cut.
  const subset = { filter: { by_selector_match: { selectors: [sel(F1), sel('x509pop:subject:cn:B')], match: 'MATCH_SUBSET' } }, page_size: 1 }
  t.same(await walk(subset), [[DEVICE_B], []])
})

void t.test('agent service – BanAgent and DeleteAgent ban and evict attested agents, logged with their caller', async t => {
  const stand = await startSpireApiStand(t)
  recordDevices(stand)
  t.same(await stand.call('BanAgent', { id: splitId(DEVICE_A) }, 'agent'), {})
  t.match(await stand.call('GetAgent', { id: splitId(DEVICE_A) }, 'agent'), { banned: true, x509svid_serial_number: '' }, 'banned: its serial number emptied')
  t.equal(stand.agent.store.agents.get(DEVICE_A)?.banned, true, 'the store\'s record is banned')
  t.same(ids((await stand.call<{ agents: AgentMessage[] }>('ListAgents', { filter: { by_banned: { value: true } } }, 'agent')).agents), [DEVICE_A])
  t.same(await stand.call('BanAgent', { id: splitId(DEVICE_A) }, 'agent'), {}, 'banning a banned agent changes nothing')

  t.same(await stand.call('DeleteAgent', { id: splitId(DEVICE_A) }, 'agent'), {})
  t.same(await stand.failure('GetAgent', { id: splitId(DEVICE_A) }, 'agent'), { code: CODE.NOT_FOUND, details: 'agent not found' })
  t.equal(stand.agent.store.agents.get(DEVICE_A), undefined, 'evicted from the store')
  t.same(await stand.call('CountAgents', {}, 'agent'), { count: 3 })
  for (const method of ['DeleteAgent', 'BanAgent']) {
    t.same(await stand.failure(method, { id: splitId(DEVICE_A) }, 'agent'), { code: CODE.NOT_FOUND, details: 'agent not found' }, `${method}: an unknown agent`)
    t.same(await stand.failure(method, {}, 'agent'), { code: CODE.INVALID_ARGUMENT, details: 'invalid agent ID: request must specify SPIFFE ID' })
    t.same(await stand.failure(method, { id: id('/web') }, 'agent'), {
      code: CODE.INVALID_ARGUMENT, details: 'invalid agent ID: "spiffe://plant.example/web" is not an agent in trust domain "plant.example"; path is not in the agent namespace'
    })
    const own = await stand.failure(method, { id: splitId(stand.agent.store.agentId) }, 'agent')
    t.equal(own?.code, CODE.NOT_FOUND, `${method}: this node's agent is not an attested agent`)
    t.match(own?.details, /^agent not found: .* is this Chaperone agent itself, not an attested agent; it cannot be banned or deleted$/)
  }
  t.same(ids((await stand.call<{ agents: AgentMessage[] }>('ListAgents', {}, 'agent')).agents), [stand.agent.store.agentId, DEVICE_C, DEVICE_B], 'this node\'s agent stays')

  const changes = stand.logs().filter(line => line.msg === 'SPIRE server API: BanAgent' || line.msg === 'SPIRE server API: DeleteAgent')
  t.same(changes.map(line => [line.method, line.agents]), [
    ['BanAgent', [{ id: DEVICE_A, code: 'OK' }]],
    ['BanAgent', [{ id: DEVICE_A, code: 'OK' }]],
    ['DeleteAgent', [{ id: DEVICE_A, code: 'OK' }]]
  ])
  t.match(changes[0].caller, { uid: process.getuid?.() }, 'with its caller')
})

