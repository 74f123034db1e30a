/**
 * AgentCa: the agent's certificate authority. It mints X509-SVIDs and JWT-SVIDs (and, in the upstream role, the CAs
 * of downstream servers), publishes the trust domain's bundle, rotates its authorities and JWT keys on SPIRE's
 * schedule (rotation.ts), and keeps all of it on disk (ca-state.ts), so the trust domain survives restarts. Rotation
 * runs on a timer, and before any mint that finds it due, so a suspended or long-stopped agent never signs with an
 * expired authority.
 */
import { createPublicKey, X509Certificate } from 'node:crypto'
import type { SpiffeBundle, TrustDomain } from '../../spiffe'
import { RateLimitedLog } from '../../log/limited-log'
import { resolveOptions } from './ca-options'
import type { AgentCaOptions, CaSettings } from './ca-options'
import { CaStore } from './ca-state'
import type { CaSnapshot } from './ca-state'
import { buildBundle, buildStatus, bundleContentKey, issuesUntil } from './ca-view'
import type { CaStatus } from './ca-view'
import { parseAndCheckCsr } from './csr'
import { downstreamTtlSeconds, signDownstreamCa } from './downstream-ca'
import type { DownstreamCa } from './downstream-ca'
import { CaError } from './errors'
import { checkJwtSvidRequest, createJwtKey, signJwtSvid } from './jwt-issuer'
import type { JwtSvidRequest } from './jwt-issuer'
import { applyPlan, isEmptyPlan, nextRotationAt, planRotation } from './rotation'
import type { RotationPlan, ScheduledKey } from './rotation'
import { checkX509SvidRequest, signX509Svid } from './svid-issuer'
import type { X509SvidRequest, X509SvidResult } from './svid-issuer'
import { withJwtAuthorities, withRoots } from './remote-bundle'
import { loadUpstream, pathToRoot } from './upstream'
import type { Upstream } from './upstream'
import { createAuthority, createRemoteAuthority } from './x509-authority'
import type { X509Authority } from './x509-authority'

/** How often the timer applies the schedule; SPIRE's CA manager checks every 10 s too. */
const ROTATION_CHECK_MS = 10_000
/** A rotation failing at every check (an upstream away for hours) is logged once a minute, with the count in between. */
const ROTATION_FAILURE_LOG_MS = 60_000

export class AgentCa {
  readonly trustDomain: TrustDomain
  readonly #settings: CaSettings
  readonly #store: CaStore
  readonly #upstream?: Upstream
  #snapshot: CaSnapshot
  #bundle?: SpiffeBundle
  /** Rotations run one at a time, in call order. */
  #rotating: Promise<unknown> = Promise.resolve()
  #timer?: NodeJS.Timeout
  /** The rotation the timer (or a mint, under a remote upstream) started, until it ends: never two at once. */
  #background?: Promise<void>
  readonly #failures: RateLimitedLog
  #closed = false
  readonly #bundleListeners = new Set<(bundle: SpiffeBundle) => void>()
  readonly #activateListeners = new Set<() => void>()

  private constructor (settings: CaSettings, store: CaStore, snapshot: CaSnapshot, upstream?: Upstream) {
    this.trustDomain = settings.trustDomain
    this.#settings = settings
    this.#store = store
    this.#snapshot = snapshot
    this.#upstream = upstream
    this.#failures = new RateLimitedLog(settings.logger, ROTATION_FAILURE_LOG_MS)
  }

  /** Loads the persisted CA, or creates it; then applies the rotation schedule (catching up after downtime). */
  static async open (options: AgentCaOptions): Promise<AgentCa> {
    const settings = resolveOptions(options)
    const { trustDomain, directory, logger } = settings
    const upstream = settings.upstream === undefined ? undefined : await loadUpstream(settings.upstream, settings.clock())
    const upstreamRoots = upstream?.roots.map(root => root.fingerprint256)
    const remote = settings.remoteUpstream
    const { store, loaded } = await CaStore.open({ directory, trustDomain, upstreamRoots, remoteUpstream: remote !== undefined, logger })
    let snapshot: CaSnapshot = loaded?.snapshot ?? { sequence: 0, x509: [], jwt: [] }
    if (upstream !== undefined) checkChainsToUpstream(snapshot, upstream.roots, directory)
    if (loaded !== undefined && upstreamRoots !== undefined && upstreamRoots.join() !== loaded.upstreamRoots.join()) {
      snapshot = { ...snapshot, sequence: snapshot.sequence + 1 }
      await store.save(snapshot)
      logger.info({ sequence: snapshot.sequence, roots: upstreamRoots }, 'CA: the upstream roots changed; the bundle now holds the new ones')
    }
    const ca = new AgentCa(settings, store, snapshot, upstream)
    logger.info({ trustDomain: trustDomain.name, directory, created: loaded === undefined, ...(remote === undefined ? {} : { upstream: remote.name }) },
      loaded === undefined ? 'CA: creating a new CA' : 'CA: loaded')
    await ca.#firstRotation()
    ca.#timer = setInterval(() => { ca.#rotateInBackground() }, ROTATION_CHECK_MS).unref()
    return ca
  }

  async mintX509Svid (request: X509SvidRequest): Promise<X509SvidResult> {
    const { x509SvidTtlSeconds, keyType } = this.#settings
    const checked = checkX509SvidRequest(request, this.trustDomain, x509SvidTtlSeconds)
    const now = await this.#current()
    return await signX509Svid(activeOf(this.#snapshot.x509), checked, keyType, now)
  }

  /** An X509-SVID for the key of a PKCS#10 request (BatchNewX509SVID): the request gives only the key (csr.ts). */
  async mintX509SvidFromCsr (csrDer: Buffer, request: Omit<X509SvidRequest, 'publicKey'>): Promise<X509SvidResult> {
    return await this.mintX509Svid({ ...request, publicKey: await parseAndCheckCsr(csrDer) })
  }

  /**
   * A CA certificate for the key of a PKCS#10 request, as SPIRE's server answers NewDownstreamX509CA
   * (downstream-ca.ts): signed by the active authority, `preferredTtlSeconds` 0 meaning this CA's own CA TTL.
   */
  async signDownstreamCa (csrDer: Buffer, preferredTtlSeconds: number): Promise<DownstreamCa> {
    const publicKey = await parseAndCheckCsr(csrDer)
    const ttlSeconds = downstreamTtlSeconds(preferredTtlSeconds, this.#settings.caTtlSeconds)
    const now = await this.#current()
    // The authority and the roots of one state: a rotation while signing cannot pair them wrongly.
    const authority = activeOf(this.#snapshot.x509)
    const roots = this.bundle().x509.authorities.map(root => root.raw)
    return { ...await signDownstreamCa(authority, publicKey, ttlSeconds, this.trustDomain, now), roots }
  }

  async mintJwtSvid (request: JwtSvidRequest): Promise<{ token: string, expiresAt: Date, issuedAt: Date }> {
    const checked = checkJwtSvidRequest(request, this.trustDomain, this.#settings.jwtSvidTtlSeconds)
    const now = await this.#current()
    return await signJwtSvid(activeOf(this.#snapshot.jwt), checked, now)
  }

  /** The trust domain's bundle: X.509 roots, JWT keys, sequence and refresh hint. Rebuilt only after a change. */
  bundle (): SpiffeBundle {
    this.#bundle ??= buildBundle(this.trustDomain, this.#snapshot, this.#settings.refreshHintSeconds, this.#upstream?.roots)
    return this.#bundle
  }

  status (): CaStatus {
    return buildStatus(this.#snapshot, this.#settings.remoteUpstream?.name ?? (this.#upstream === undefined ? undefined : 'CA files'))
  }

  /**
   * Applies the schedule at clock(): prepares, activates and drops authorities and JWT keys as due, persists, then
   * tells the listeners. Returns whether anything changed. Idempotent; safe to call at any time and from anywhere.
   */
  async rotate (): Promise<boolean> {
    this.#checkOpen()
    const run = this.#rotating.then(async () => await this.#rotateNow())
    this.#rotating = run.catch(() => undefined)
    return await run
  }

  /**
   * Takes the remote upstream's bundle as GetBundle gave it (its roots and every JWT authority: other devices', the
   * upstream's). Persisted and announced only when it changes what this CA serves. Returns whether it did.
   */
  async updateUpstreamBundle (bundle: SpiffeBundle): Promise<boolean> {
    this.#checkOpen()
    if (this.#settings.remoteUpstream === undefined) throw new CaError('ERR_CA_OPTIONS_INVALID', 'an upstream bundle is taken only under a remote upstream')
    const run = this.#rotating.then(async () => {
      const previous = this.#snapshot
      const next = { ...previous, upstreamBundle: bundle }
      if (bundleContentKey(previous) === bundleContentKey(next)) return false
      await this.#commit(previous, next)
      this.#settings.logger.info({ sequence: this.#snapshot.sequence, roots: bundle.x509.size, jwtAuthorities: bundle.jwt.size }, 'CA: the upstream bundle changed')
      return true
    })
    this.#rotating = run.catch(() => undefined)
    return await run
  }

  /** Called with the new bundle after every change of it (after it is persisted). Returns the unsubscribe function. */
  onBundleChange (listener: (bundle: SpiffeBundle) => void): () => void {
    this.#bundleListeners.add(listener)
    return () => { this.#bundleListeners.delete(listener) }
  }

  /** Called when a new X.509 authority becomes active: X509-SVIDs should be minted again. Returns the unsubscribe function. */
  onActivate (listener: () => void): () => void {
    this.#activateListeners.add(listener)
    return () => { this.#activateListeners.delete(listener) }
  }

  /** Stops the rotation timer and refuses further use; the state on disk stays as last saved. */
  close (): void {
    this.#closed = true
    clearInterval(this.#timer)
    this.#bundleListeners.clear()
    this.#activateListeners.clear()
  }

  #checkOpen (): void {
    if (this.#closed) throw new CaError('ERR_CA_CLOSED', `the CA of ${this.trustDomain.name} is closed`)
  }

  /**
   * The time to sign at, after any rotation that is due by then. If that rotation fails (the state cannot be saved),
   * signing goes on with the current keys while they are valid: an unsaved rotation must not stop SVID issuance.
   */
  async #current (): Promise<Date> {
    this.#checkOpen()
    const { clock, logger } = this.#settings
    const due = [nextRotationAt(this.#snapshot.x509), nextRotationAt(this.#snapshot.jwt)]
    if (!due.some(at => at === undefined || clock() >= at)) return clock()
    if (this.#settings.remoteUpstream !== undefined && this.#usable(clock())) {
      // The upstream may be slow or away for a while: signing goes on with the current keys as it is asked.
      this.#rotateInBackground()
      return clock()
    }
    try {
      await this.rotate()
    } catch (err) {
      const now = clock()
      if (activeOf(this.#snapshot.x509).notAfter < now || activeOf(this.#snapshot.jwt).notAfter < now) throw err
      logger.error({ err }, 'CA: rotation failed; signing with the current key, which is still valid')
    }
    return clock()
  }

  async #rotateNow (): Promise<boolean> {
    const { jwtKeyType, caTtlSeconds, clock, logger } = this.#settings
    const now = clock()
    const previous = this.#snapshot
    const x509Plan = planRotation(previous.x509, now)
    const jwtPlan = planRotation(previous.jwt, now)
    if (isEmptyPlan(x509Plan) && isEmptyPlan(jwtPlan)) return false
    const created = x509Plan.create ? await this.#createAuthority(now) : undefined
    const createdJwt = jwtPlan.create ? await createJwtKey(jwtKeyType, caTtlSeconds, now) : undefined
    let upstreamBundle = created?.roots === undefined ? previous.upstreamBundle : withRoots(this.trustDomain, previous.upstreamBundle, created.roots)
    const remote = this.#settings.remoteUpstream
    if (createdJwt !== undefined && remote !== undefined) {
      // Published before it is even prepared, so every device's bundle can hold it before a token it signs exists.
      const jwt = await remote.publishJwtKey({ keyId: createdJwt.id, publicKey: createPublicKey(createdJwt.privateKey), expiresAt: createdJwt.notAfter })
      upstreamBundle = withJwtAuthorities(this.trustDomain, upstreamBundle, jwt)
    }
    const next: CaSnapshot = {
      sequence: previous.sequence,
      x509: applyPlan(previous.x509, x509Plan, created?.authority),
      jwt: applyPlan(previous.jwt, jwtPlan, createdJwt),
      ...(upstreamBundle === undefined ? {} : { upstreamBundle })
    }
    await this.#commit(previous, next)
    logPlan(logger, 'X.509 authority', x509Plan, previous.x509, next.x509, now)
    logPlan(logger, 'JWT key', jwtPlan, previous.jwt, next.jwt, now)
    if (x509Plan.activate) this.#notify(this.#activateListeners)
    return true
  }

  /** A new authority: signed by the remote upstream (with the roots it gave), by the upstream CA files, or self-signed. */
  async #createAuthority (now: Date): Promise<{ authority: X509Authority, roots?: readonly Buffer[] }> {
    const { trustDomain, keyType, caTtlSeconds, remoteUpstream } = this.#settings
    if (remoteUpstream !== undefined) return await createRemoteAuthority(keyType, caTtlSeconds, remoteUpstream)
    return { authority: await createAuthority(trustDomain, keyType, caTtlSeconds, now, this.#upstream) }
  }

  /** Persists `next` (its sequence bumped if the bundle's content changed), makes it current, tells bundle listeners. */
  async #commit (previous: CaSnapshot, next: CaSnapshot): Promise<void> {
    const bundleChanged = bundleContentKey(previous, this.#upstream?.roots) !== bundleContentKey(next, this.#upstream?.roots)
    const saved = bundleChanged ? { ...next, sequence: next.sequence + 1 } : next
    await this.#store.save(saved)
    this.#snapshot = saved
    this.#bundle = undefined
    if (bundleChanged) this.#notify(this.#bundleListeners, this.bundle())
  }

  /**
   * The schedule applied at open. Under a remote upstream that cannot be reached, a CA with a valid active authority
   * and JWT key starts anyway and keeps issuing with them (the timer retries); a new CA cannot start without it.
   */
  async #firstRotation (): Promise<void> {
    try {
      await this.rotate()
    } catch (err) {
      if (this.#settings.remoteUpstream === undefined || !this.#usable(this.#settings.clock())) throw err
      this.#settings.logger.error({ err, until: activeOf(this.#snapshot.x509).notAfter.toISOString() },
        `CA: cannot rotate with ${this.#settings.remoteUpstream.name}; issuing with the current authority until it can`)
    }
  }

  /** Whether the active authority and JWT key can still sign at `now`. */
  #usable (now: Date): boolean {
    return [this.#snapshot.x509, this.#snapshot.jwt].every(keys => keys.some(key => key.state === 'active' && key.notAfter >= now))
  }

  /** Starts a rotation unless one started here is still running (under a remote upstream, calls may wait long). */
  #rotateInBackground (): void {
    if (this.#background !== undefined) return
    this.#background = this.rotate().then(() => undefined, (err: unknown) => { this.#rotationFailed(err) }).finally(() => { this.#background = undefined })
  }

  /** A failed scheduled rotation: logged with how long the authorities held now can still issue; retried at the next check. */
  #rotationFailed (err: unknown): void {
    const until = issuesUntil(this.#snapshot)
    const hoursLeft = Math.max(0, Math.floor((until.getTime() - this.#settings.clock().getTime()) / 36e5))
    this.#failures.error('rotation', { err, issuesUntil: until.toISOString(), hoursLeft }, 'CA: scheduled rotation failed; retrying at the next check')
  }

  /** A listener's failure is logged and does not stop the others, nor undo the rotation. */
  #notify<A extends unknown[]> (listeners: Iterable<(...args: A) => void>, ...args: A): void {
    for (const listener of listeners) {
      try {
        listener(...args)
      } catch (err) {
        this.#settings.logger.error({ err }, 'CA: a rotation listener failed')
      }
    }
  }
}

function activeOf<K extends ScheduledKey> (keys: readonly K[]): K {
  const active = keys.find(key => key.state === 'active')
  if (active === undefined) throw new Error('CA invariant broken: no active key after rotation')
  return active
}

/** One log line per kind of key that changed: what was prepared, activated and dropped; a warning when catching up. */
function logPlan (
  logger: CaSettings['logger'], kind: string, plan: RotationPlan, before: readonly ScheduledKey[], after: readonly ScheduledKey[], now: Date
): void {
  if (isEmptyPlan(plan)) return
  const activeId = (keys: readonly ScheduledKey[]): string | undefined => keys.find(key => key.state === 'active')?.id
  const fields = {
    at: now.toISOString(),
    prepared: after.filter(key => !before.some(old => old.id === key.id)).map(key => key.id),
    activated: activeId(after) === activeId(before) ? [] : [activeId(after)],
    dropped: plan.drop
  }
  if (plan.catchUp !== undefined) logger.warn(fields, `CA: ${kind} rotation catching up: ${plan.catchUp}`)
  else logger.info(fields, `CA: ${kind} rotation`)
}

/** Under an upstream CA from files, every stored intermediate must still chain to its roots, or peers reject its SVIDs. */
function checkChainsToUpstream (snapshot: CaSnapshot, roots: readonly X509Certificate[], directory: string): void {
  for (const authority of snapshot.x509) {
    const pool = authority.upstreamChain.map(der => new X509Certificate(der))
    if (pathToRoot(authority.cert, pool, roots) === undefined) {
      throw new CaError('ERR_CA_STATE_MISMATCH',
        `CA state in ${directory}: authority ${authority.id} (until ${authority.notAfter.toISOString()}) does not chain to the configured upstream roots; ` +
        'keep the old root in upstream.bundleFile until then, or move the CA directory away to start a new CA')
    }
  }
}
