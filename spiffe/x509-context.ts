/**
 * X509Context: one state of a workload's X.509 identity as the sources (X509Source, DelegatedX509Source) hand it
 * out: the SVID chosen, every SVID issued, and the bundles to verify peers with; frozen, and replaced as a whole on
 * every change. Its fingerprint tells a real change from the full state sent again.
 */
import { createHash, X509Certificate } from 'node:crypto'
import type { BundleSet } from './bundle-set'
import { parseSpiffeId } from './id'
import type { SpiffeId } from './id'
import type { X509Svid } from './workload-messages'

export interface X509Context {
  /** The SVID `pick` chose. */
  readonly svid: X509Svid
  /** Every SVID the agent issued to this workload. */
  readonly svids: readonly X509Svid[]
  /** The bundles of the SVIDs' own trust domains plus the federated ones, for verifyPeerChain and TLS contexts. */
  readonly bundles: BundleSet
  readonly spiffeId: SpiffeId
  /** When the chosen SVID's leaf expires. */
  readonly notAfter: Date
  readonly receivedAt: Date
}

export function makeX509Context (svid: X509Svid, svids: readonly X509Svid[], bundles: BundleSet): X509Context {
  return Object.freeze({
    svid,
    svids: Object.freeze([...svids]),
    bundles,
    spiffeId: parseSpiffeId(svid.spiffeId),
    notAfter: new Date(new X509Certificate(svid.chain[0]).validTo),
    receivedAt: new Date()
  })
}

/** A digest of what TLS contexts are built from: the choice, every SVID's ID and leaf, every bundle's authorities. */
export function fingerprintOf (context: X509Context): string {
  const hash = createHash('sha256')
  const add = (label: string, data: string | Buffer): void => {
    hash.update(`${label}:${data.length}:`).update(data)
  }
  add('chosen', context.svid.chain[0])
  for (const svid of context.svids) {
    add('svid', svid.spiffeId)
    add('leaf', svid.chain[0])
    add('bundle', svid.bundle.toDer())
  }
  for (const bundle of [...context.bundles].sort((a, b) => a.trustDomain.name < b.trustDomain.name ? -1 : 1)) {
    add('trust domain', bundle.trustDomain.name)
    add('authorities', bundle.x509.toDer())
  }
  return hash.digest('hex')
}

/**
 * What the proxies need of a source of X509Contexts, whether it is this workload's own (X509Source, the Workload
 * API) or a workload's a node proxy serves (DelegatedX509Source, the Delegated Identity API).
 */
export interface X509ContextSource {
  /** The agent's address, for messages. */
  readonly address: string
  /** The state to use now, or undefined while there is none. */
  readonly current: X509Context | undefined
  /** The current state, waiting up to `timeoutMs` for one; the timeout's error says what to check. */
  ready: (timeoutMs?: number) => Promise<X509Context>
  on: (event: 'update', listener: (context: X509Context) => void) => unknown
  /** Reconnect at once should a reconnection be waiting (e.g. the SVID in use expired). */
  retrySoon: () => void
  close: () => void
}
