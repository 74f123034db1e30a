/**
 * The operator's upstream CA: its certificate and key sign our intermediate authorities, and its roots (the bundle
 * file, or the upstream certificate itself when self-signed) are the trust domain's X.509 bundle. Every defect is
 * refused at load with ERR_CA_UPSTREAM_INVALID naming the file and the problem.
 */
import { X509Certificate } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { decodePem } from '../../spiffe'
import { CaError } from './errors'
import { decodePrivateKey, describeKey, keyTypeName, keysMatch, signingKeyOf } from './keys'
import { certificateFacts } from './x509-certificate'
import type { CertificateIssuer } from './x509-certificate'

export interface UpstreamFiles {
  readonly certFile: string
  readonly keyFile: string
  readonly bundleFile?: string
}

export interface Upstream {
  /** Signs our intermediates. */
  readonly issuer: CertificateIssuer
  /** The certificates between our intermediate and a root, upstream certificate first; empty when it is a root. */
  readonly chain: readonly Buffer[]
  /** The bundle's X.509 authorities. */
  readonly roots: readonly X509Certificate[]
  /** The earliest NotAfter on the path to the root: our intermediates end no later (RFC 5280 §6 checks every link). */
  readonly notAfter: Date
}

/** Guards against a bundle or chain that loops or never ends; real hierarchies are two or three deep. */
const MAX_PATH_LENGTH = 8

function invalid (message: string, cause?: unknown): CaError {
  return new CaError('ERR_CA_UPSTREAM_INVALID', `upstream CA: ${message}`, { cause })
}

export async function loadUpstream (files: UpstreamFiles, now: Date): Promise<Upstream> {
  const [cert, ...rest] = await readCertificates(files.certFile, 'certFile')
  const privateKey = decodeKey(await readText(files.keyFile, 'keyFile'), files.keyFile)
  if (keyTypeName(privateKey) === undefined) {
    throw invalid(`keyFile ${files.keyFile} holds an ${describeKey(privateKey)} key; an EC (P-256, P-384, P-521) or RSA (2048 bits or more) key is needed`)
  }
  if (!keysMatch(privateKey, cert.publicKey)) {
    throw invalid(`the key in keyFile ${files.keyFile} does not belong to the certificate in certFile ${files.certFile}`)
  }
  const facts = await certificateFacts(cert.raw)
  const name = `certificate "${cert.subject.replace(/\n/g, ', ')}" in certFile ${files.certFile}`
  if (!facts.isCa) throw invalid(`${name} is not a CA (basicConstraints cA is not true), so it cannot sign our intermediate`)
  if (facts.canSignCertificates === false) throw invalid(`${name} has a keyUsage without keyCertSign, so it cannot sign certificates`)
  if (facts.pathLength === 0) throw invalid(`${name} has pathLenConstraint 0, which forbids the intermediate CA this agent runs under it`)
  if (now < new Date(cert.validFrom)) throw invalid(`${name} is not valid before ${new Date(cert.validFrom).toISOString()}`)
  const roots = await bundleRoots(files, cert, name)
  const path = pathToRoot(cert, rest, roots)
  if (path === undefined) {
    throw invalid(`${name} does not chain to any root in ${files.bundleFile ?? files.certFile} (certFile may list the intermediates above it)`)
  }
  const upstream = {
    issuer: { subject: facts.subject, keyId: facts.keyId, signingKey: await signingKeyOf(privateKey) },
    chain: path.chain.map(link => link.raw),
    roots,
    notAfter: new Date(Math.min(...[...path.chain, path.root].map(link => new Date(link.validTo).getTime())))
  }
  checkUpstreamCurrent(upstream, now)
  return upstream
}

/** Refuses an upstream whose path to the root has expired: nothing it signs could validate. */
export function checkUpstreamCurrent (upstream: Upstream, now: Date): void {
  if (now >= upstream.notAfter) {
    throw invalid(`the upstream certificate chain expired at ${upstream.notAfter.toISOString()}; configure a current upstream CA`)
  }
}

/** The roots: the bundle file's certificates, or the upstream certificate itself when it is self-signed. */
async function bundleRoots (files: UpstreamFiles, cert: X509Certificate, name: string): Promise<X509Certificate[]> {
  if (files.bundleFile !== undefined) return await readCertificates(files.bundleFile, 'bundleFile')
  if (issued(cert, cert)) return [cert]
  const issuer = cert.issuer.replace(/\n/g, ', ')
  throw invalid(`${name} is an intermediate (issued by "${issuer}"); give upstream.bundleFile with the root certificate(s) it chains to`)
}

function issued (issuer: X509Certificate, cert: X509Certificate): boolean {
  return cert.checkIssued(issuer) && cert.verify(issuer.publicKey)
}

/**
 * The path from `cert` up to a root, through `pool`: `chain` holds the certificates below the root (none when `cert`
 * is a root itself). Undefined when no root is reached.
 */
export function pathToRoot (
  cert: X509Certificate, pool: readonly X509Certificate[], roots: readonly X509Certificate[]
): { chain: X509Certificate[], root: X509Certificate } | undefined {
  const chain: X509Certificate[] = []
  let current = cert
  while (chain.length < MAX_PATH_LENGTH) {
    const self = roots.find(root => root.fingerprint256 === current.fingerprint256)
    if (self !== undefined) return { chain, root: self }
    chain.push(current)
    const root = roots.find(candidate => issued(candidate, current))
    if (root !== undefined) return { chain, root }
    const next = pool.find(candidate => !chain.includes(candidate) && issued(candidate, current))
    if (next === undefined) return undefined
    current = next
  }
  return undefined
}

async function readText (path: string, field: string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch (err) {
    throw invalid(`${field} ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, err)
  }
}

async function readCertificates (path: string, field: string): Promise<X509Certificate[]> {
  const text = await readText(path, field)
  try {
    const blocks = decodePem(text).filter(block => block.label === 'CERTIFICATE')
    if (blocks.length === 0) throw new Error('no PEM CERTIFICATE block found')
    return blocks.map(block => new X509Certificate(block.der))
  } catch (err) {
    throw invalid(`${field} ${path} does not hold PEM certificates (${(err as Error).message})`, err)
  }
}

function decodeKey (pem: string, path: string): KeyObject {
  try {
    return decodePrivateKey(pem)
  } catch (err) {
    throw invalid(`keyFile ${path} does not hold an unencrypted PEM private key (${(err as Error).message})`, err)
  }
}
