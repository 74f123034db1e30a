import t from 'tap'
import type { AgentMessage } from '../../../agent/spire-api/messages'
import { CODE, TD, id, splitId, startSpireApiStand } from './fixtures/spire-api-stand'

// SPIRE's Agent service on the SPIRE server socket: this node's one agent, so that an orchestrator learns the
// parent ID its entries need; filters, masks and paging as SPIRE's; the calls that change agents are not served.

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
