/**
 * The device CA's key: a fresh EC P-256 key pair (SPIRE's server default `ca_key_type`), and the PKCS#10 request
 * NewDownstreamX509CA takes, made as SPIRE's downstream server makes it (pkg/server/credtemplate/builder.go
 * BuildUpstreamSignedX509CACSR): its default CA subject (C=US, O=SPIFFE) and the URI SAN `spiffe://<td>`. The upstream
 * uses only the key; the rest says what the request is for.
 */
import 'reflect-metadata'
import * as x509 from '@peculiar/x509'
import { KeyObject, webcrypto } from 'node:crypto'
import type { TrustDomain } from '../../spiffe/id'

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' }

export interface DeviceCaKey {
  readonly privateKey: KeyObject
  /** DER PKCS#10, self-signed by the key. */
  readonly csr: Buffer
}

/** A fresh CA key for `trustDomain` and its CSR. */
export async function newDeviceCaKey (trustDomain: TrustDomain): Promise<DeviceCaKey> {
  const keys = await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])
  // Node's WebCrypto, passed explicitly: @peculiar/x509's process-wide default provider is left alone.
  const request = await x509.Pkcs10CertificateRequestGenerator.create({
    keys,
    signingAlgorithm: ALGORITHM,
    name: [{ C: ['US'] }, { O: ['SPIFFE'] }],
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${trustDomain.name}` }])]
  }, webcrypto)
  return { privateKey: KeyObject.from(keys.privateKey), csr: Buffer.from(request.rawData) }
}
