/**
 * Node mode end to end on real network namespaces (root only), identities from a REAL SPIRE agent (SPIRE_VERSION):
 * spire-server and spire-agent (spire-stand.ts) with the agent's admin socket serving the Delegated Identity API,
 * `authorized_delegates` = the node proxy's ID; entries made with `spire-server entry create`, parented by the agent,
 * one per app by `unix:uid`, the node proxy (root) by `unix:uid:0`. SPIRE attests each app's process, in its own
 * network namespace, by the PID the node proxy names (PID mode, held by a pidfd). Proves what node-mode-netns proves
 * with Chaperone's agent (node-mode-checks.ts): ten apps served, XFCC names the caller, a denied pair refused and
 * logged, a namespace with no entry gets no identity and no plaintext, a namespace made anew served again, the node
 * proxy killed under load with no plaintext on the bridge and service resuming. Calls between the apps go through
 * their tunnel ports (`sameDevice: tunnel`), so this test proves that path; node-mode-netns proves the handoff.
 * Part of `npm run test:interop`.
 */
import t from 'tap'
import { skipFleetNetns } from './fleet-netns-stand'
import { nodeModeChecks, startServedStand } from './node-mode-checks'
import { spireAgent } from './node-mode-identity'
import { SPIRE_VERSION } from './peers'

void t.test(`node mode – ten apps on namespaces under one node proxy, identities from SPIRE ${SPIRE_VERSION}'s agent`, { skip: skipFleetNetns(), timeout: 300_000 }, async t => {
  const startedAt = Date.now()
  const stand = await startServedStand(t, 'nodes', spireAgent, 'tunnel')
  t.comment(`SPIRE, ten apps and the node proxy up in ${((Date.now() - startedAt) / 1000).toFixed(1)} s`)
  await nodeModeChecks(t, stand, 'tunnel')
})
