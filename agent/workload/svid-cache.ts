/**
 * The X509-SVID each registration entry currently has. Minted on first use, renewed at half its lifetime (±10 %
 * jitter, like SPIRE, so many workloads do not renew at once), and all renewed when the CA activates a new
 * authority. Renewals run one at a time with the event loop free between them. Keys live in memory only.
 */
import type { Logger } from 'pino'
import type { AgentCa } from '../ca'
import type { RegistrationEntry } from '../store'
import { parseSpiffeId } from '../../spiffe/id'

export interface CachedSvid {
  readonly entryId: string
  readonly revision: number
  readonly spiffeId: string
  readonly hint: string
  /** The chain as the Workload API carries it: DER certificates, leaf first, concatenated. */
  readonly chainDer: Buffer
  /** The same chain, one DER certificate each (the Delegated Identity API's cert_chain). */
  readonly chain: readonly Buffer[]
  /** PKCS#8 DER, unencrypted (the Workload API's x509_svid_key). */
  readonly keyDer: Buffer
  readonly expiresAt: Date
  readonly renewAt: Date
}

interface Slot {
  /** The entry as last minted for: renewals mint with its TTL and DNS names. */
  entry: RegistrationEntry
  svid: Promise<CachedSvid>
  timer?: NodeJS.Timeout
}

export interface SvidCacheOptions {
  readonly clock?: () => Date
  /** Uniform in [0, 1); the renewal point is 50 % ± 10 % of the lifetime. */
  readonly random?: () => number
}

export class X509SvidCache {
  readonly #ca: AgentCa
  readonly #logger: Logger
  readonly #clock: () => Date
  readonly #random: () => number
  readonly #slots = new Map<string, Slot>()
  readonly #listeners = new Set<(entryId: string) => void>()
  readonly #stopActivate: () => void
  #renewals: Promise<void> = Promise.resolve()

  constructor (ca: AgentCa, logger: Logger, options: SvidCacheOptions = {}) {
    this.#ca = ca
    this.#logger = logger
    this.#clock = options.clock ?? (() => new Date())
    this.#random = options.random ?? Math.random
    this.#stopActivate = ca.onActivate(() => { for (const id of this.#slots.keys()) this.#scheduleRenewal(id) })
  }

  /**
   * The entry's current SVID: cached while the entry is unchanged and before its renewal point. A slot is replaced
   * synchronously, before any await, so concurrent callers (one per open stream) share a single mint.
   */
  async get (entry: RegistrationEntry): Promise<CachedSvid> {
    for (;;) {
      let slot = this.#slots.get(entry.id)
      if (slot === undefined || slot.entry.revision !== entry.revision) slot = this.#mintInto(entry)
      const svid = await slot.svid
      if (this.#clock() < svid.renewAt) return svid
      if (this.#slots.get(entry.id) === slot) this.#mintInto(slot.entry)
    }
  }

  /** Called with the entry ID after a background renewal produced a new SVID. */
  onRenew (listener: (entryId: string) => void): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  /** Drops a deleted entry's SVID (its key leaves memory with it). */
  forget (entryId: string): void {
    clearTimeout(this.#slots.get(entryId)?.timer)
    this.#slots.delete(entryId)
  }

  get size (): number {
    return this.#slots.size
  }

  close (): void {
    this.#stopActivate()
    for (const id of [...this.#slots.keys()]) this.forget(id)
  }

  /** Starts minting for the entry and makes that the entry's slot at once. */
  #mintInto (entry: RegistrationEntry): Slot {
    const previous = this.#slots.get(entry.id)
    clearTimeout(previous?.timer)
    const slot: Slot = { entry, svid: this.#mint(entry) }
    this.#slots.set(entry.id, slot)
    slot.svid.then(svid => {
      if (this.#slots.get(entry.id) !== slot) return
      slot.timer = setTimeout(() => { this.#scheduleRenewal(entry.id) }, Math.max(0, svid.renewAt.getTime() - this.#clock().getTime()))
      slot.timer.unref()
    }, () => { if (this.#slots.get(entry.id) === slot) this.#slots.delete(entry.id) })
    return slot
  }

  async #mint (entry: RegistrationEntry): Promise<CachedSvid> {
    const minted = await this.#ca.mintX509Svid({
      spiffeId: parseSpiffeId(entry.spiffeId),
      ...(entry.x509SvidTtl > 0 ? { ttlSeconds: entry.x509SvidTtl } : {}),
      ...(entry.dnsNames.length > 0 ? { dnsNames: [...entry.dnsNames] } : {})
    })
    if (minted.privateKey === undefined) throw new Error('the CA returned no private key for a generated key pair')
    const now = this.#clock().getTime()
    const lifetime = minted.expiresAt.getTime() - now
    return {
      entryId: entry.id,
      revision: entry.revision,
      spiffeId: entry.spiffeId,
      hint: entry.hint,
      chainDer: Buffer.concat(minted.chain),
      chain: Object.freeze([...minted.chain]),
      keyDer: minted.privateKey.export({ type: 'pkcs8', format: 'der' }),
      expiresAt: minted.expiresAt,
      renewAt: new Date(now + lifetime * (0.4 + 0.2 * this.#random()))
    }
  }

  /** Queues a renewal behind the others, so a CA activation re-mints every SVID one by one, never in one long burst. */
  #scheduleRenewal (entryId: string): void {
    this.#renewals = this.#renewals.then(async () => {
      const slot = this.#slots.get(entryId)
      if (slot === undefined) return
      try {
        await this.#mintInto(slot.entry).svid
        for (const listener of this.#listeners) listener(entryId)
      } catch (err) {
        this.#logger.error({ err, entryId }, 'workload API: renewing an X509-SVID failed; retrying at the next renewal point')
      }
      await new Promise(resolve => setImmediate(resolve))
    })
  }
}
