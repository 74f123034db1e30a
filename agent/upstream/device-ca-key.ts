/**
 * The device CA's key and the PKCS#10 request NewDownstreamX509CA takes, made as SPIRE's downstream server makes it
 * (pkg/server/credtemplate/builder.go BuildUpstreamSignedX509CACSR): its default CA subject (C=US, O=SPIFFE) and the
 * URI SAN `spiffe://<td>`. The upstream uses only the key; the rest says what the request is for. The key is the
 * CA's own (any key type the CA makes: EC P-256, RSA), or a fresh EC P-256 key pair (SPIRE's default `ca_key_type`).
 */
import 'reflect-metadata'
import * as x509 from '@peculiar/x509'
import { generateKeyPair, webcrypto } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { promisify } from 'node:util'
import type { TrustDomain } from '../../spiffe/id'

export interface DeviceCaKey {
  readonly privateKey: KeyObject
  /** DER PKCS#10, self-signed by the key. */
  readonly csr: Buffer
}

/** Signature algorithms for the request, by key type: ECDSA with the curve's hash, or RSASSA-PKCS1-v1_5 with SHA-256. */
const CURVE_HASH: Readonly<Record<string, string>> = { 'P-256': 'SHA-256', 'P-384': 'SHA-384', 'P-521': 'SHA-512' }
const NODE_CURVES: Readonly<Record<string, string>> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' }

/** The request for `keys` (a fresh EC P-256 pair when none is given) for `trustDomain`. */
export async function newDeviceCaKey (trustDomain: TrustDomain, keys?: { privateKey: KeyObject, publicKey: KeyObject }): Promise<DeviceCaKey> {
  const pair = keys ?? await promisify(generateKeyPair)('ec', { namedCurve: 'P-256' })
  const curve = NODE_CURVES[pair.privateKey.asymmetricKeyDetails?.namedCurve ?? '']
  const algorithm = curve === undefined
    ? { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }
    : { name: 'ECDSA', namedCurve: curve, hash: CURVE_HASH[curve] }
  const cryptoKeys = {
    privateKey: await webcrypto.subtle.importKey('pkcs8', pair.privateKey.export({ type: 'pkcs8', format: 'der' }), algorithm, false, ['sign']),
    publicKey: await webcrypto.subtle.importKey('spki', pair.publicKey.export({ type: 'spki', format: 'der' }), algorithm, true, ['verify'])
  }
  // Node's WebCrypto, passed explicitly: @peculiar/x509's process-wide default provider is left alone.
  const request = await x509.Pkcs10CertificateRequestGenerator.create({
    keys: cryptoKeys,
    signingAlgorithm: algorithm,
    name: [{ C: ['US'] }, { O: ['SPIFFE'] }],
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${trustDomain.name}` }])]
  }, webcrypto)
  return { privateKey: pair.privateKey, csr: Buffer.from(request.rawData) }
}
