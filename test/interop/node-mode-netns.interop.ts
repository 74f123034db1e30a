/**
 * Node mode end to end on real network namespaces (root only), identities from Chaperone's own agent through its
 * Delegated Identity API: ten app namespaces on one bridge under one node proxy, apps unchanged and with no sidecar.
 * Each app reaches another by address and port with no settings, and the callee sees the caller's ID in
 * X-Forwarded-Client-Cert; a pair the policy denies is refused and logged; a namespace with no entry gets no identity
 * and no plaintext either way; an app whose namespace is made anew (a restarted container) is served again; the node
 * proxy killed under load lets no plaintext cross the bridge, and service resumes when it comes back
 * (node-mode-checks.ts; node-mode-spire.interop.ts proves the same with a SPIRE agent). Calls between the apps are
 * handed over inside the node proxy (`sameDevice: handoff`, the default); the SPIRE test sends them through the tunnel.
 */
import t from 'tap'
import { skipFleetNetns } from './fleet-netns-stand'
import { nodeModeChecks, startServedStand } from './node-mode-checks'
import { chaperoneAgent } from './node-mode-identity'

void t.test('node mode – ten apps on namespaces under one node proxy', { skip: skipFleetNetns() }, async t => {
  const stand = await startServedStand(t, 'nodem', chaperoneAgent, 'handoff')
  await nodeModeChecks(t, stand, 'handoff')
})
