/**
 * How node mode's benchmark is set up, as results.md states it (the topology itself is built by devices.ts from
 * layout.ts).
 */

export const TOPOLOGY: readonly string[] = [
  'devices: two network namespaces, d1 and d2, each a device\'s host. Each holds two bridges: one for node-mode apps, guarded ' +
    '(`guard: { bridges: [...] }`: between its apps only the tunnel port passes), and one for apps with sidecars (unguarded: sidecars ' +
    'talk to each other on the apps\' own ports). Every app is a namespace of its own on one of them, by a veth pair, with a default route ' +
    'through its bridge. d1 and d2 are joined by a veth pair (the wire) and route each other\'s app networks over it, so a hop between ' +
    'devices is routed as between two machines on a LAN. Only the namespaces\' names touch the root namespace',
  'node mode: `chaperone node run` inside each device\'s namespace (`ip netns exec <device> …`), as root, serving its app namespaces by path; ' +
    '`appNetworks` lists both devices\' node-mode networks, so an app calling an app on either device goes out as mutual TLS to the callee\'s ' +
    'tunnel port, except that a call to an app of the same node proxy is handed over inside it (`sameDevice: handoff`, the default); ' +
    'port 8080 is in `httpPorts` (HTTP mode), 9090 is not (TCP mode). Each app\'s identity is its uid\'s entry, through the ' +
    'Delegated Identity API',
  'sidecar pair: in the other bridge\'s app namespaces, `chaperone proxy init-iptables` then `chaperone proxy run --transparent-outbound 15001 ' +
    '--transparent-inbound 15006 --transparent-http-ports 8080`, each sidecar as a uid of its own (exempt from the redirect) with its own ' +
    'entry, through the Workload API; the same hops as node mode\'s, on the same devices and wire',
  'one agent in the root namespace for both devices: its Workload API and Delegated Identity API sockets are files, which every namespace ' +
    'reaches (on real devices each would run its own agent under one upstream; issuance is not what is measured). The node proxy (uid 0) ' +
    'is its authorized delegate',
  'apps: a one-worker nginx (the proxy benchmark\'s backend) as the server app, on loopback only, so only what a proxy forwards inside the ' +
    'namespace reaches it; an idle process (`sleep`) as every other app, each as a uid of its own. Every proxy runs with Node\'s flags as ' +
    'the image sets them (`--max-semi-space-size=1`)'
]
