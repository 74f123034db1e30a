/**
 * `chaperone demo` (what `npm start` runs). The demo mesh needs the agent, the policy engine and the sidecar;
 * until they land it says exactly what it will do, and exits 0.
 */
export function describeDemo (): string {
  return [
    'Chaperone demo mesh (not built yet; it arrives with the transparent-mode issue).',
    'When ready, `npm start` will, on loopback only:',
    '  1. start the agent: a CA for trust domain demo.chaperone, a registration store, the Workload API socket;',
    '  2. register two apps and start them unchanged: app-a (a client) and app-b (an HTTP server);',
    '  3. start a sidecar beside each, which fetches its X509-SVID from the agent;',
    '  4. make an allowed call app-a -> app-b over mutual TLS, showing the peer ID app-b received;',
    '  5. make a call the policy denies, showing the deny log line and the rule that decided.',
    'Today the SPIFFE primitives are in place: see README.md and `npm test`.',
    ''
  ].join('\n')
}
