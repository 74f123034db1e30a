/**
 * The fleet server's own X509-SVID, `spiffe://<td>/spire/server` (the ID devices and SPIRE agents check before they
 * send anything, spire-compat.md §1.1), issued by the agent's CA to a key made here, renewed at half of its life and
 * whenever the CA activates a new authority (so the chain devices see is the current one). Each renewal is handed on
 * (to the listener, for new connections).
 */
import { generateKeyPairSync } from 'node:crypto'
import type { Logger } from 'pino'
import { parseSpiffeId } from '../../spiffe/id'
import type { SpiffeId, TrustDomain } from '../../spiffe/id'
import { encodePem } from '../../spiffe/pem'
import type { AgentCa } from '../ca'
import type { ServerCredential } from './fleet-listener'

/** SPIRE's server ID in a trust domain. */
export function fleetServerId (trustDomain: TrustDomain): SpiffeId {
  return parseSpiffeId(`spiffe://${trustDomain.name}/spire/server`)
}

/** Retry delay when a renewal fails (the CA's state not writable): the current SVID stays in use meanwhile. */
const RETRY_MS = 10_000

export class ServerSvid {
  readonly #ca: AgentCa
  readonly #onRenew: (credential: ServerCredential) => void
  readonly #logger: Logger
  #credential: ServerCredential
  #timer?: NodeJS.Timeout
  #stopActivate?: () => void

  private constructor (ca: AgentCa, credential: ServerCredential, onRenew: (credential: ServerCredential) => void, logger: Logger) {
    this.#ca = ca
    this.#credential = credential
    this.#onRenew = onRenew
    this.#logger = logger
  }

  /** The first SVID is issued before this resolves; `onRenew` is called with each later one. */
  static async start (ca: AgentCa, onRenew: (credential: ServerCredential) => void, logger: Logger): Promise<ServerSvid> {
    const { credential, renewAt } = await issue(ca)
    const svid = new ServerSvid(ca, credential, onRenew, logger)
    svid.#schedule(renewAt)
    svid.#stopActivate = ca.onActivate(() => { svid.#schedule(new Date()) })
    return svid
  }

  get credential (): ServerCredential {
    return this.#credential
  }

  stop (): void {
    clearTimeout(this.#timer)
    this.#stopActivate?.()
  }

  #schedule (at: Date): void {
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => { void this.#renew() }, Math.max(0, at.getTime() - Date.now())).unref()
  }

  async #renew (): Promise<void> {
    try {
      const { credential, renewAt } = await issue(this.#ca)
      this.#credential = credential
      this.#onRenew(credential)
      this.#schedule(renewAt)
    } catch (err) {
      this.#logger.error({ err }, 'fleet: the server X509-SVID could not be renewed; retrying in 10 s')
      this.#schedule(new Date(Date.now() + RETRY_MS))
    }
  }
}

async function issue (ca: AgentCa): Promise<{ credential: ServerCredential, renewAt: Date }> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const issuedAt = Date.now()
  const svid = await ca.mintX509Svid({ spiffeId: fleetServerId(ca.trustDomain), publicKey })
  return {
    credential: { keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, chainPem: encodePem('CERTIFICATE', svid.chain) },
    renewAt: new Date(issuedAt + (svid.expiresAt.getTime() - issuedAt) / 2)
  }
}
