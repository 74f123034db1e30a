/**
 * Device birth certificates for x509pop tests: a manufacturer's CA (a root, optionally with an issuing intermediate)
 * and the leaf it gives each device at the factory (CN = the device's serial, KU digitalSignature, EC P-256 or
 * RSA-2048), plus the defective ones a SPIRE server must refuse (expired, without digitalSignature; a foreign
 * manufacturer is simply another TestManufacturer). Built on pki.ts's CAs and build-cert.ts; a manufacturer CA is a
 * plain X.509 CA, so the SPIFFE URI SAN pki.ts gives CAs is left out. Nothing is cached: every call makes fresh keys.
 */
import { X509Certificate } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { buildCertificate } from './build-cert'
import type { KeyUsageBit } from './build-cert'
import { createTestCa, generateKeyPair, toPem } from './pki'
import type { CaOptions, KeyType, TestCa } from './pki'

export interface ManufacturerOptions {
  /** The manufacturer's name, written as O and in the CAs' CNs; "Chaperone Test Devices" by default. */
  name?: string
  /** Devices are issued by an intermediate below the root (then their chains carry it); false by default. */
  intermediate?: boolean
  /** The CAs' key type; EC P-256 by default. */
  keyType?: KeyType
}

export interface BirthCertOptions {
  /** EC P-256 by default. */
  keyType?: KeyType
  /** Already expired (a day ago): SPIRE refuses it in chain verification. */
  expired?: boolean
  /** Key usage keyEncipherment only: SPIRE refuses it when making the challenge. */
  withoutDigitalSignature?: boolean
}

/** A device's birth credential as the factory leaves it on the device. */
export interface BirthCert {
  /** The device's serial number, the certificate's CN. */
  serial: string
  leaf: X509Certificate
  /** DER, the leaf first, then the manufacturer's intermediate when there is one (never the root). */
  chain: Buffer[]
  chainPem: string
  key: KeyObject
  keyPem: string
}

const DEFAULT_NAME = 'Chaperone Test Devices'
const DAY_MS = 24 * 3600_000
const YEAR_MS = 365 * DAY_MS
const BACKDATE_MS = 10_000

/** A manufacturer's PKI: the root operators put in SPIRE's `ca_bundle_path`, and the CA that issues devices. */
export class TestManufacturer {
  readonly name: string
  readonly root: TestCa
  readonly issuer: TestCa

  constructor (options: ManufacturerOptions = {}) {
    this.name = options.name ?? DEFAULT_NAME
    const ca = (commonName: string): CaOptions => ({
      keyType: options.keyType,
      notAfter: new Date(Date.now() + 10 * YEAR_MS),
      override: { uris: [], subject: { organization: this.name, commonName } }
    })
    this.root = createTestCa('manufacturer.test', ca(`${this.name} Root CA`))
    this.issuer = options.intermediate === true ? this.root.createIntermediate(ca(`${this.name} Device CA`)) : this.root
  }

  /** The root, PEM: what a SPIRE server's x509pop `ca_bundle_path` holds. */
  get caBundlePem (): string {
    return this.root.certPem
  }

  /** A birth certificate for the device `serial`. */
  issueBirthCert (serial: string, options: BirthCertOptions = {}): BirthCert {
    const { privateKey, publicKey } = generateKeyPair(options.keyType)
    const now = Date.now()
    const usages: KeyUsageBit[] = options.withoutDigitalSignature === true ? ['keyEncipherment'] : ['digitalSignature']
    const leafDer = buildCertificate({
      subject: { organization: this.name, commonName: serial },
      issuer: this.issuer.signer,
      publicKey,
      notBefore: new Date(options.expired === true ? now - 2 * DAY_MS : now - BACKDATE_MS),
      notAfter: options.expired === true ? new Date(now - DAY_MS) : this.issuer.notAfter,
      basicConstraints: { cA: false, critical: true },
      keyUsage: { usages, critical: true }
    })
    const chain = [leafDer, ...this.issuer.chain]
    return {
      serial,
      leaf: new X509Certificate(leafDer),
      chain,
      chainPem: toPem(chain),
      key: privateKey,
      keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
    }
  }
}
