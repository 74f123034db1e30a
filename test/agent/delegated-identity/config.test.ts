import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadAgentConfig } from '../../../agent/config'
import { thrown } from '../../helpers/errors'

// The agent's settings for the Delegated Identity API: authorizedDelegates (SPIRE's authorized_delegates),
// delegatedIdentitySocket and its group.

void t.test('delegated config – none by default: no delegate (every call refused), no socket of its own', async t => {
  const config = loadAgentConfig(undefined, { trustDomain: 'plant.example' })
  t.same(config.authorizedDelegates, [])
  t.equal(config.delegatedIdentitySocket, undefined)
  t.equal(config.delegatedIdentitySocketGroup, undefined)
})

void t.test('delegated config – from the file: delegates as SPIFFE IDs, each once; the socket and its group', async t => {
  const dir = t.testdir({
    'agent.yaml': [
      'trustDomain: plant.example',
      'authorizedDelegates:',
      '  - spiffe://plant.example/node-proxy',
      '  - spiffe://plant.example/cilium-agent',
      '  - spiffe://plant.example/node-proxy',
      'delegatedIdentitySocket: /run/chaperone/delegated.sock',
      'delegatedIdentitySocketGroup: node-proxy',
      ''
    ].join('\n')
  })
  const config = loadAgentConfig(join(dir, 'agent.yaml'))
  t.same(config.authorizedDelegates, ['spiffe://plant.example/node-proxy', 'spiffe://plant.example/cilium-agent'])
  t.ok(Object.isFrozen(config.authorizedDelegates), 'frozen')
  t.equal(config.delegatedIdentitySocket, '/run/chaperone/delegated.sock')
  t.equal(config.delegatedIdentitySocketGroup, 'node-proxy')
})

void t.test('delegated config – a delegate that could never match an entry, or a group without a socket, is refused with its line', async t => {
  const dir = t.testdir({})
  const cases: Array<[string[], RegExp]> = [
    [['authorizedDelegates:', '  - not-an-id'], /agent\.yaml:3:5: authorizedDelegates\[0\]: invalid SPIFFE ID "not-an-id"/],
    [['authorizedDelegates:', '  - spiffe://plant.example/a', '  - spiffe://other.example/proxy'], /agent\.yaml:4:5: authorizedDelegates\[1\]: must be the SPIFFE ID of a workload of this agent's trust domain/],
    [['authorizedDelegates: [spiffe://plant.example]'], /authorizedDelegates\[0\]: must be the SPIFFE ID of a workload/],
    [['authorizedDelegates: spiffe://plant.example/a'], /authorizedDelegates: must be array/],
    [['delegatedIdentitySocketGroup: node-proxy'], /agent\.yaml:2:31: delegatedIdentitySocketGroup: is the group of delegatedIdentitySocket: set that socket too/]
  ]
  for (const [lines, reason] of cases) {
    const file = join(dir, 'agent.yaml')
    writeFileSync(file, ['trustDomain: plant.example', ...lines, ''].join('\n'))
    const err = thrown(() => loadAgentConfig(file))
    t.equal(err.code, 'ERR_CONFIG_INVALID')
    t.match(err.message, reason, lines.join(' / '))
  }
})
