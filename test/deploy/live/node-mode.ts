/**
 * The node-mode deployment's checks, for compose-up.ts: docker-compose.node.yml, unmodified, with one Compose. The
 * apps are on proxy-redirect with nothing but a label; one node proxy serves both. It proves: app-a reaches app-b
 * by name with no settings, and app-b is told app-a's ID; a call the policy denies is refused and logged by the
 * node proxy, naming both apps; a container with no label (so not served) gets nothing from app-b; nothing crosses
 * the bridge between the apps but TLS, captured from before `up` (app-a's calls are handed to app-b inside the node
 * proxy, and cross it not at all); and `down -v` leaves nothing. Not a test itself.
 */
import type { Test } from 'tap'
import type { Compose } from './composes'
import { ROGUE_PATH, callFromAppA, expectAppBToldAppA, expectDownLeavesNothing, expectOnlyTls, logs, openDeployment, requestsAtAppB, rogueCallFails, upUntilHello } from './deployment'

const PROJECT = 'chaperonenodetest'
/** Between node proxies, every connection goes to the tunnel port (deploy/node/node.yaml keeps the default). */
export const TUNNEL_PORT = 15008
/** app-b's port. */
const APP_PORT = 8080

export interface NodeModeOptions {
  /** The bridge of proxy-redirect, to capture on. */
  readonly bridge: string
  /** The folder with the copied compose files and deploy/. */
  readonly dir: string
  /** A container on proxy-redirect without the label: not served. */
  readonly rogue: string
}

export async function nodeModeDeployment (t: Test, compose: Compose, options: NodeModeOptions): Promise<void> {
  const d = await openDeployment(t, compose, { project: PROJECT, file: 'docker-compose.node.yml', dir: options.dir, bridge: options.bridge })
  const capture = await d.capture('node-mode-up')
  await upUntilHello(t, d, 'up')

  await t.test('app-a reaches app-b by name with no settings, and app-b is told app-a\'s verified ID', async t => {
    await expectAppBToldAppA(t, d)
    // The node proxy is in the host's network namespace: its admin endpoints are on this machine's loopback.
    const status = await (await fetch('http://127.0.0.1:15000/status')).json() as { apps: Array<{ name: string, ready: boolean, spiffeId?: string }> }
    t.same(status.apps.map(app => [app.ready, app.spiffeId]).sort(), [[true, 'spiffe://plant.example/app-a'], [true, 'spiffe://plant.example/app-b']], 'the node proxy serves both apps, each with its own identity')
  })

  await t.test('a call the policy denies is refused and logged; a container that is not served gets nothing', async t => {
    const before = (await requestsAtAppB(d)).length
    t.equal(await callFromAppA(d, '-X', 'POST', '--data', 'x'), '403', 'POST from app-a: 403 from the node proxy')
    const denied = (await logs(d, 'node')).filter(line => line.includes('"event":"denied"'))
    // Handed over inside the node proxy, the call is decided by app-b's side, which names the caller as its peer. The
    // app's name is its container's: <project>-app-b-1 (Compose v2) or <project>_app-b_1 (1.29).
    t.ok(denied.some(line => line.includes('POST') && /"app":"[^"]*app-b/.test(line) && line.includes('"peer":"spiffe://plant.example/app-a"')), `the node proxy logged the denial by app-b's side, naming app-a: ${denied.at(-1) ?? 'nothing'}`)
    await rogueCallFails(t, options.rogue)
    const after = await requestsAtAppB(d)
    t.notOk(after.slice(before).some(r => r.method === 'POST' || r.path === ROGUE_PATH), 'app-b received neither request')
  })

  await t.test('proxy-redirect carried nothing but TLS between the apps, from the first packet', async t => {
    // One node proxy serves both apps: app-a's calls are handed to app-b inside it and never cross the bridge. What
    // does cross it is the rogue's request, and any call app-a made before it was adopted: dropped by the guard.
    await expectOnlyTls(t, capture, { attempts: APP_PORT })
  })

  await t.test('down -v leaves no container and no volume', async t => {
    await expectDownLeavesNothing(t, d, PROJECT)
  })
}
