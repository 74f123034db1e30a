/**
 * The key the agent X509-SVID will certify: a fresh EC P-256 key pair (SPIRE's agent default), made for each
 * attestation and never written anywhere, and the PKCS#10 request that carries its public key to the server. SPIRE
 * uses nothing of the request but the key (AgentX509SVIDParams.csr), so the subject is empty.
 */
import 'reflect-metadata'
import * as x509 from '@peculiar/x509'
import { KeyObject, webcrypto } from 'node:crypto'

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' }

export interface AgentKey {
  readonly privateKey: KeyObject
  /** DER PKCS#10, self-signed by the key. */
  readonly csr: Buffer
}

/** A fresh agent key and its CSR. */
export async function newAgentKey (): Promise<AgentKey> {
  const keys = await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])
  // Node's WebCrypto, passed explicitly: @peculiar/x509's process-wide default provider is left alone.
  const request = await x509.Pkcs10CertificateRequestGenerator.create({ keys, signingAlgorithm: ALGORITHM }, webcrypto)
  return { privateKey: KeyObject.from(keys.privateKey), csr: Buffer.from(request.rawData) }
}
