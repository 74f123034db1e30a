/**
 * What the x509pop interop tests share: a real SPIRE server whose x509pop NodeAttestor trusts a test manufacturer
 * (certs-test/birth-certs.ts), the device's view of it (`upstreamServer` trusting `spire-server bundle show`), a device
 * attesting with a birth certificate, and `openssl verify` of a chain against SPIRE's bundle. Not a test itself.
 */
import type { Test } from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { TestManufacturer } from '../../certs-test'
import type { BirthCert } from '../../certs-test'
import type { TrustDomain } from '../../spiffe/id'
import { encodePem } from '../../spiffe/pem'
import { attestAgent, birthCredential, upstreamServer, x509popAttestor } from '../../agent/upstream'
import type { AgentSvid, UpstreamServer } from '../../agent/upstream'
import { must } from '../helpers/command'
import { startSpireStand } from './spire-stand'
import type { SpireStand, SpireStandOptions } from './spire-stand'

export interface X509popStand {
  /** The manufacturer whose roots the server's x509pop trusts (with an issuing intermediate). */
  readonly maker: TestManufacturer
  readonly spire: SpireStand
  /** The server as a device knows it: its TCP address, the trust domain, SPIRE's bundle. */
  readonly server: UpstreamServer
}

/** A SPIRE server (and agent) for `trustDomain` with x509pop trusting a fresh manufacturer; stopped when `t` ends. */
export async function startX509popStand (t: Test, trustDomain: TrustDomain, options: SpireStandOptions = {}): Promise<X509popStand> {
  const maker = new TestManufacturer({ intermediate: true })
  const spire = await startSpireStand(t, { ...options, trustDomain: trustDomain.name, x509popCaBundlePem: maker.caBundlePem })
  return { maker, spire, server: upstreamServer(spire.serverAddress, trustDomain, await spire.bundlePem()) }
}

/** The agent X509-SVID of the device holding `birth`. */
export async function attestDevice (server: UpstreamServer, birth: BirthCert): Promise<AgentSvid> {
  return await attestAgent({ server, attestor: x509popAttestor(birthCredential(birth.chain, birth.key)) })
}

/**
 * `openssl verify -CAfile <SPIRE's bundle> [-untrusted <the rest>] <the first certificate of chain>`, files named
 * after `name` in the stand's folder: its output, which must say OK.
 */
export async function opensslVerifyAgainstSpire (spire: SpireStand, chain: readonly Buffer[], name: string): Promise<string> {
  const [first, ...rest] = chain
  const file = (part: string): string => join(spire.dir, `${name}-${part}.pem`)
  writeFileSync(file('cert'), encodePem('CERTIFICATE', [first]))
  writeFileSync(file('bundle'), await spire.bundlePem())
  if (rest.length > 0) writeFileSync(file('untrusted'), encodePem('CERTIFICATE', rest))
  const untrusted = rest.length === 0 ? [] : ['-untrusted', file('untrusted')]
  return await must('openssl', ['verify', '-CAfile', file('bundle'), ...untrusted, file('cert')])
}
