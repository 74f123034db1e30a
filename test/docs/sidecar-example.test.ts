import t from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse } from 'yaml'
import { parsePolicy } from '../../policy/document'
import type { PolicyRule } from '../../policy/document'
import { servedPortWarnings } from '../../policy/served-ports'
import { loadSidecarConfig } from '../../proxy/config'
import { servedPorts } from '../../proxy/served-ports'
import { reportingApp, startMesh } from '../helpers/mesh'
import type { Mesh, RunningSidecar } from '../helpers/mesh'

// The README's sidecar example is the frontend's sidecar of its policy example: the outbound `api` listener targets
// the api's sidecar (TLS port 8443) and names the app behind it with servicePort 8080, the port the rule
// frontend-reads-api lists. These tests hold the README to that, and run the pair: the rule lets the call through,
// and a rule with another port denies it at whichever end decides with it.

const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8')
const yamlOf = (title: string): string => /```yaml\n([\s\S]*?)```/.exec(readme.split(new RegExp(`^## ${title}$`, 'm'))[1] ?? '')?.[1] ?? ''
const policyText = yamlOf('The policy')
const sidecarText = yamlOf('The sidecar')

interface ListenerExample { name: string, listen: string, target: string, protocol: string, expect?: string, servicePort?: number }
const sidecar = parse(sidecarText) as { spiffeId: string, inbound: ListenerExample[], outbound: ListenerExample[] }
const api = sidecar.outbound.find(l => l.name === 'api') as ListenerExample
/** The api's sidecar has an inbound listener like the example's `web`: TLS on 8443, its app on 8080. */
const web = sidecar.inbound.find(l => l.name === 'web') as ListenerExample
const rule = parsePolicy(policyText).document.rules.find(r => r.name === 'frontend-reads-api') as PolicyRule
const portOf = (address: string): number => Number(address.split(':').at(-1))

void t.test('docs – the README\'s outbound listener names the service port its policy rule lists, not the peer\'s TLS port', async t => {
  t.equal(sidecar.spiffeId, rule.from[0], 'the example is the rule\'s client\'s sidecar')
  t.equal(api.expect, rule.to[0], 'its api listener expects the rule\'s server')
  t.equal(portOf(api.target), portOf(web.listen), 'the target is the peer sidecar\'s TLS port')
  t.equal(api.servicePort, portOf(web.target), 'servicePort is the app\'s port behind it')
  t.not(api.servicePort, portOf(api.target))
  t.ok(rule.ports?.includes(api.servicePort ?? 0), 'the rule lists that port')
  t.equal(api.protocol, 'http', 'an HTTP listener, so the rule\'s HTTP conditions can hold')
})

void t.test('docs – the README\'s sidecar example lints clean against its policy; without servicePort it would not', async t => {
  const dir = t.testdir({ 'sidecar.yaml': sidecarText, 'without.yaml': sidecarText.replace(', servicePort: 8080', '') })
  const policy = parsePolicy(policyText, 'policy.yaml')
  // Its transparent listeners and HTTP proxy serve any port: the explicit listeners alone are what is checked here.
  const warnings = (file: string): string[] => servedPortWarnings(policy, sidecar.spiffeId,
    servedPorts(loadSidecarConfig(join(dir, file)).listeners.filter(l => l.kind === 'fixed'))).map(w => w.message)
  t.same(warnings('sidecar.yaml'), [])
  t.match(warnings('without.yaml'), [/the rule lists port 8080; its outbound listeners serve port 8443/])
})

void t.test('docs – the README\'s pair: rule ports [8080] let the call through; another port denies it at either end', async t => {
  const app = await reportingApp()
  // The app listens on a free port, which stands for the README's 8080 in the policy and in servicePort.
  const policyAt = (port: number): string => policyText.replace(`ports: [${api.servicePort ?? 0}]`, `ports: [${port}]`)
  const mesh: Mesh = await startMesh(policyAt(app.port))
  t.teardown(async () => {
    await mesh.close()
    app.server.close()
  })
  for (const id of [sidecar.spiffeId, rule.to[0]]) await mesh.register(id)
  const files = { client: join(mesh.dir, 'client-policy.yaml'), server: join(mesh.dir, 'server-policy.yaml') }
  writeFileSync(files.client, policyAt(app.port))
  writeFileSync(files.server, policyAt(app.port))
  const server: RunningSidecar = await mesh.startSidecar(rule.to[0], { policy: files.server }, { inbound: [{ ...web, listen: '127.0.0.1:0', target: `127.0.0.1:${app.port}` }] })
  const client: RunningSidecar = await mesh.startSidecar(sidecar.spiffeId, { policy: files.client }, {
    outbound: [{ ...api, listen: '127.0.0.1:0', target: `127.0.0.1:${server.port('web')}`, servicePort: app.port }]
  })
  /** Both sidecars' policies, each with the rule at these ports, in force now. */
  const rulePorts = (clientPort: number, serverPort: number): void => {
    writeFileSync(files.client, policyAt(clientPort))
    writeFileSync(files.server, policyAt(serverPort))
    for (const side of [client, server]) side.sidecar.services.policy.reload()
  }
  const call = async (): Promise<number> => (await fetch(`http://127.0.0.1:${client.port('api')}/v1/items`, { headers: { connection: 'close' } })).status
  const denials = (side: RunningSidecar): Array<Record<string, unknown>> => side.logs.filter(line => line.event === 'denied')

  t.equal(await call(), 200, 'allowed at port 8080 on both sides')
  t.equal(app.seen.length, 1)
  const tlsPort = server.port('web')
  rulePorts(tlsPort, app.port)
  t.equal(await call(), 403, 'the client\'s sidecar denies a rule at another port (here the peer\'s TLS port)')
  t.match(denials(client), [{ listener: 'api', port: app.port, rule: 'default' }], 'deciding at the service port')
  rulePorts(app.port, tlsPort)
  t.equal(await call(), 403, 'and so does the server\'s')
  t.match(denials(server), [{ listener: 'web', port: app.port, rule: 'default' }])
  t.equal(app.seen.length, 1, 'no denied request reached the app')
})
