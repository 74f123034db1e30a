/**
 * The sidecar's own identity: the latest X509-SVID and bundles from the Workload API, with the TLS material built
 * once per change (never per connection). Listeners read `current` for every new handshake; connections already
 * established keep the credentials they were made with, so a rotation breaks nothing.
 */
import { constants, createHash } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { createSecureContext } from 'node:tls'
import type { SecureContext, SecureContextOptions } from 'node:tls'
import type { Logger } from 'pino'
import { encodePem } from '../spiffe/pem'
import { X509Source } from '../spiffe/x509-source'
import type { X509Context, X509ContextSource } from '../spiffe/x509-context'
import { SvidExpiryWatch } from './svid-expiry'

export interface IdentityState {
  /**
   * The SVID in use and the bundles. `context.notAfter` is when this SVID expires: a new state replaces this one with
   * every new SVID, so `identity.current.context.notAfter` is always the expiry of what new handshakes present, and
   * `svidHasExpired(context.notAfter)` (svid-expiry.ts) says whether it has passed.
   */
  readonly context: X509Context
  /** For servers: `server.setSecureContext(options)` takes options, not a SecureContext. */
  readonly serverOptions: SecureContextOptions
  /** For clients: one context shared by every outbound handshake until the next change. */
  readonly clientContext: SecureContext
  /** Increases with every change; sessions made under an older epoch are not resumed. */
  readonly epoch: number
}

const TLS_MIN = 'TLSv1.2'

/** A sidecar's source: its Workload API, `spiffeId` picking one of several identities (default: the first). */
export function workloadApiSource (address: string | undefined, spiffeId: string | undefined, logger: Logger): X509Source {
  return new X509Source({
    address,
    ...(spiffeId === undefined ? {} : { pick: svids => svids.find(svid => svid.spiffeId === spiffeId) }),
    onError: err => { logger.warn({ event: 'workload_api_error', err: err.message }, 'Workload API: keeping the last good SVID') }
  })
}

export class SidecarIdentity extends EventEmitter<{ change: [IdentityState] }> {
  readonly source: X509ContextSource
  readonly #expiry: SvidExpiryWatch
  #state: IdentityState | undefined
  #fingerprint = ''
  #epoch = 0

  /** `source`: the Workload API (X509Source) for a sidecar, the Delegated Identity API (one per app) in node mode. */
  constructor (source: X509ContextSource, logger: Logger) {
    super()
    this.source = source
    // Once expired, no peer accepts the SVID: ask the Workload API again at once instead of after the longest backoff.
    this.#expiry = new SvidExpiryWatch(logger, this.source.address, () => { this.source.retrySoon() })
    this.source.on('update', context => {
      const before = this.#state
      if (this.#apply(context) === before) return
      logger.info({ event: 'svid_updated', spiffeId: context.spiffeId.toString(), notAfter: context.notAfter.toISOString() }, 'SVID or bundle updated')
    })
  }

  /** Waits for the first SVID (the error says what to check when none comes). */
  async ready (timeoutMs: number): Promise<IdentityState> {
    const context = await this.source.ready(timeoutMs)
    return this.#state ?? this.#apply(context)
  }

  get current (): IdentityState | undefined {
    return this.#state
  }

  close (): void {
    this.#expiry.stop()
    this.source.close()
  }

  #apply (context: X509Context): IdentityState {
    // The Workload API re-sends the whole state when any of this workload's SVIDs changes; only our SVID and the
    // trust bundles matter here.
    const fingerprint = fingerprintOf(context)
    if (this.#state !== undefined && fingerprint === this.#fingerprint) return this.#state
    this.#fingerprint = fingerprint
    const options: SecureContextOptions = {
      key: context.svid.key.export({ type: 'pkcs8', format: 'pem' }),
      cert: encodePem('CERTIFICATE', context.svid.chain),
      minVersion: TLS_MIN,
      // TLS 1.2 renegotiation, either side asking: a peer could restart a handshake mid-connection for nothing good.
      secureOptions: constants.SSL_OP_NO_RENEGOTIATION
    }
    this.#state = Object.freeze({ context, serverOptions: options, clientContext: createSecureContext(options), epoch: ++this.#epoch })
    this.#expiry.watch(context)
    this.emit('change', this.#state)
    return this.#state
  }
}

function fingerprintOf (context: X509Context): string {
  const hash = createHash('sha256')
  for (const der of context.svid.chain) hash.update(der)
  for (const bundle of context.bundles) {
    hash.update(bundle.trustDomain.name)
    for (const authority of bundle.x509.authorities) hash.update(authority.raw)
  }
  return hash.digest('hex')
}
