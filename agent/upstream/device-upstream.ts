/**
 * The device role as the CA sees it (agent/ca/remote-upstream.ts): the fleet's SPIRE server certifies the device's
 * authorities and takes its JWT keys, as SPIRE's `spire` UpstreamAuthority does for a nested server. Behind each call,
 * the device's identities towards the server, each renewed at half of its life: the agent X509-SVID from AttestAgent
 * (x509pop proves the birth certificate again; SPIRE lets x509pop agents re-attest), and the X509-SVID of the
 * device's downstream entry, the caller of NewDownstreamX509CA, PublishJWTAuthority and GetBundle. The server is
 * checked against the trust domain's latest bundle once the CA holds one, else the operator's bootstrap bundle.
 */
import type { KeyObject } from 'node:crypto'
import { JwtBundle } from '../../spiffe/jwt-bundle'
import type { SpiffeBundle } from '../../spiffe/spiffe-bundle'
import type { X509Bundle } from '../../spiffe/x509-bundle'
import type { PublishedJwtKey, RemoteUpstream, SignedAuthority } from '../ca/remote-upstream'
import { attestAgent } from './attest-agent'
import type { AgentSvid } from './agent-svid'
import { fetchAuthorizedEntries } from './authorized-entries'
import { newDeviceCa } from './device-ca'
import { chooseDownstreamEntry } from './downstream-entry'
import { newEntrySvid } from './entry-svid'
import type { EntrySvid } from './entry-svid'
import type { NodeAttestor } from './node-attestor'
import { publishJwtAuthority } from './publish-jwt-authority'
import type { UpstreamServer } from './server-trust'
import { fetchUpstreamBundle } from './upstream-bundle'
import { DEFAULT_UPSTREAM_TIMEOUT_MS } from './upstream-client'

export interface DeviceUpstreamOptions {
  /** The server's address and trust domain, and the operator's bootstrap bundle (SPIRE agent's `trust_bundle_path`). */
  readonly server: UpstreamServer
  readonly attestor: NodeAttestor
  /** Bounds each call; 30 s by default. */
  readonly timeoutMs?: number
  /** The time source; tests inject one. */
  readonly clock?: () => Date
}

/** An X509-SVID's life as far as renewal cares. */
interface Held { readonly issuedAt: Date, readonly expiresAt: Date }

export class DeviceUpstream implements RemoteUpstream {
  readonly name: string
  #server: UpstreamServer
  readonly #attestor: NodeAttestor
  readonly #timeoutMs: number
  readonly #clock: () => Date
  #agent?: AgentSvid & Held
  #downstream?: EntrySvid & Held
  /** One renewal at a time: the bundle poll and a rotation may ask together. */
  #renewing?: Promise<EntrySvid>

  constructor (options: DeviceUpstreamOptions) {
    this.#server = options.server
    this.name = `SPIRE server ${options.server.address}`
    this.#attestor = options.attestor
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS
    this.#clock = options.clock ?? (() => new Date())
  }

  /** From now on, the server's chain must verify to `roots` (the trust domain's latest X.509 bundle). */
  trust (roots: X509Bundle): void {
    if (roots.size > 0) this.#server = { ...this.#server, bundle: roots }
  }

  /** The device's agent ID, once it has attested. */
  get agentId (): string | undefined {
    return this.#agent?.id.toString()
  }

  async signAuthority (keys: { privateKey: KeyObject, publicKey: KeyObject }, ttlSeconds: number): Promise<SignedAuthority> {
    const ca = await newDeviceCa(this.#server, await this.#downstreamSvid(), { keys, preferredTtlSeconds: ttlSeconds, timeoutMs: this.#timeoutMs })
    return { chain: ca.chain, roots: ca.roots }
  }

  async publishJwtKey (key: PublishedJwtKey): Promise<JwtBundle> {
    const authorities = await publishJwtAuthority(this.#server, await this.#downstreamSvid(), key, { timeoutMs: this.#timeoutMs })
    const bundle = new JwtBundle(this.#server.trustDomain)
    for (const authority of authorities) bundle.addKey(authority.keyId, authority.publicKey.export({ format: 'jwk' }))
    return bundle
  }

  /** The trust domain's bundle as the server holds it now (GetBundle, as the device's downstream entry). */
  async fetchBundle (): Promise<SpiffeBundle> {
    return await fetchUpstreamBundle(this.#server, { svid: await this.#downstreamSvid(), timeoutMs: this.#timeoutMs })
  }

  /** The downstream entry's X509-SVID, renewed (with the agent's, if need be) once past half of its life. */
  async #downstreamSvid (): Promise<EntrySvid> {
    if (this.#downstream !== undefined && this.#fresh(this.#downstream)) return this.#downstream
    this.#renewing ??= this.#renewDownstream().finally(() => { this.#renewing = undefined })
    return await this.#renewing
  }

  async #renewDownstream (): Promise<EntrySvid> {
    const agent = await this.#agentSvid()
    const entry = chooseDownstreamEntry(await fetchAuthorizedEntries(this.#server, agent, this.#timeoutMs), agent.id)
    const issuedAt = this.#clock()
    const svid = await newEntrySvid(this.#server, agent, entry, this.#timeoutMs)
    this.#downstream = { ...svid, issuedAt }
    return this.#downstream
  }

  async #agentSvid (): Promise<AgentSvid> {
    if (this.#agent !== undefined && this.#fresh(this.#agent)) return this.#agent
    const issuedAt = this.#clock()
    const agent = await attestAgent({ server: this.#server, attestor: this.#attestor, timeoutMs: this.#timeoutMs })
    this.#agent = { ...agent, issuedAt }
    return this.#agent
  }

  /** Before half of its life (counted from when we asked for it), as SPIRE's agent renews. */
  #fresh (svid: Held): boolean {
    const half = svid.issuedAt.getTime() + (svid.expiresAt.getTime() - svid.issuedAt.getTime()) / 2
    return this.#clock().getTime() < half
  }
}
