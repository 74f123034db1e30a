/**
 * certs-test: the test PKI. Helpers that give tests CAs and X509-SVIDs shaped like SPIRE's (pki.ts), the low-level
 * builder that can also get every detail wrong (build-cert.ts, on node-forge, independent of Node's OpenSSL), and the
 * named matrix of deliberately broken and valid certificates with the verdict a verifier must reach (matrix.ts),
 * which `npm run certs` writes to disk (generate.ts), and device birth certificates from a test manufacturer for x509pop
 * (birth-certs.ts). For tests and benchmarks only: production code never imports it.
 */
export {
  buildCertificate, subjectKeyId,
  type CertSpec, type ExtKeyUsagePurpose, type IssuerSpec, type KeyUsageBit, type NameSpec, type SelfSignedSpec
} from './build-cert'
export {
  createTestCa, generateKeyPair, svidProfile, toPem, TestCa,
  type CaOptions, type CertProfile, type KeyType, type SvidOptions, type TestSvid
} from './pki'
export { buildCertMatrix, TRUST_DOMAIN_A, TRUST_DOMAIN_B, type CertFixture } from './matrix'
export { writeCertMatrix, DEFAULT_OUT_DIR, type Manifest, type ManifestEntry } from './generate'
export { TestManufacturer, type BirthCert, type BirthCertOptions, type ManufacturerOptions } from './birth-certs'
