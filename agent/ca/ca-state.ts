/**
 * The CA state on disk, in `<dataDir>/ca/` (0700): each authority's key (PKCS#8 PEM) and certificate, each JWT key,
 * and state.json naming them (ca-manifest.ts). A save writes and flushes new files first, then replaces the manifest
 * atomically, then removes files it no longer names; so after a crash at any point the manifest names a complete
 * state, and files it does not name are leftovers, ignored. Loading checks every file against the manifest and never
 * rewrites or repairs anything.
 */
import { createHash, X509Certificate } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { mkdir, readFile, readdir, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { decodePem, encodePem, SpiffeBundle } from '../../spiffe'
import type { TrustDomain } from '../../spiffe'
import { MANIFEST_FILE, fileNames, parseManifest } from './ca-manifest'
import type { Manifest, ManifestAuthority, ManifestJwtKey } from './ca-manifest'
import { replaceFile, syncDirectory, writeNewFile } from './ca-files'
import { CaError } from './errors'
import { decodePrivateKey, encodePrivateKey, keyTypeName, keysMatch } from './keys'
import { jwtKeyOf } from './jwt-issuer'
import type { JwtKey } from './jwt-issuer'
import { authorityOf } from './x509-authority'
import type { X509Authority } from './x509-authority'

/** Everything that is persisted, as the CA holds it in memory. */
export interface CaSnapshot {
  readonly sequence: number
  readonly x509: readonly X509Authority[]
  readonly jwt: readonly JwtKey[]
  /** Under a remote upstream: its bundle as last received (X.509 roots, JWT authorities); kept on disk with the rest. */
  readonly upstreamBundle?: SpiffeBundle
}

export interface CaStoreOptions {
  readonly directory: string
  readonly trustDomain: TrustDomain
  /** Fingerprints of the upstream roots of an upstream CA from files; undefined otherwise. */
  readonly upstreamRoots?: readonly string[]
  /** Whether the authorities are signed by a remote upstream (a fleet's SPIRE server). */
  readonly remoteUpstream?: boolean
  readonly logger: Logger
}

export interface LoadedState {
  readonly snapshot: CaSnapshot
  /** The upstream root fingerprints the state was last saved with. */
  readonly upstreamRoots: readonly string[]
}

const PRIVATE_DIRECTORY_MODE = 0o700

export class CaStore {
  readonly #options: CaStoreOptions
  /** The files the manifest on disk names. */
  #written = new Set<string>()

  private constructor (options: CaStoreOptions) {
    this.#options = options
  }

  /** Opens (creating it if need be) the CA directory and loads the state; `loaded` is undefined for a new CA. */
  static async open (options: CaStoreOptions): Promise<{ store: CaStore, loaded?: LoadedState }> {
    const store = new CaStore(options)
    await mkdir(options.directory, { recursive: true, mode: PRIVATE_DIRECTORY_MODE })
    await store.#checkPrivate(options.directory, 'directory', 'chmod 700')
    return { store, loaded: await store.#load() }
  }

  get #manifestPath (): string {
    return join(this.#options.directory, MANIFEST_FILE)
  }

  #invalid (problem: string, cause?: unknown): CaError {
    return new CaError('ERR_CA_STATE_INVALID', `CA state in ${this.#options.directory}: ${problem}`, { cause })
  }

  /** Invariant 5 (DESIGN.md): the CA's keys are readable by the agent alone. */
  async #checkPrivate (path: string, what: string, fix: string): Promise<void> {
    const mode = (await stat(path)).mode & 0o777
    if ((mode & 0o077) !== 0) throw this.#invalid(`the ${what} ${path} is open to group or others (mode ${mode.toString(8)}); run \`${fix} ${path}\``)
  }

  async #load (): Promise<LoadedState | undefined> {
    let text: string
    try {
      text = await readFile(this.#manifestPath, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw this.#invalid(`${this.#manifestPath} cannot be read (${(err as Error).message})`, err)
    }
    const manifest = parseManifest(text, this.#manifestPath)
    this.#checkConfiguration(manifest)
    const x509 = await Promise.all(manifest.x509.map(async entry => await this.#loadAuthority(entry, manifest.upstream)))
    const jwt = await Promise.all(manifest.jwt.map(async entry => await this.#loadJwtKey(entry)))
    const upstreamBundle = manifest.upstreamBundle === undefined ? undefined : await this.#loadUpstreamBundle(manifest.upstreamBundle)
    this.#written = new Set([
      ...x509.flatMap(authority => [fileNames.x509Key(authority.id), fileNames.x509Cert(authority.id)]),
      ...jwt.map(key => fileNames.jwtKey(key.id)),
      ...(manifest.upstreamBundle === undefined ? [] : [manifest.upstreamBundle])
    ])
    await this.#noteLeftovers()
    const snapshot = { sequence: manifest.sequence, x509, jwt, ...(upstreamBundle === undefined ? {} : { upstreamBundle }) }
    return { snapshot, upstreamRoots: manifest.upstreamRoots }
  }

  async #loadUpstreamBundle (name: string): Promise<SpiffeBundle> {
    const text = await this.#readStateFile(name, 'upstreamBundle')
    try {
      return SpiffeBundle.parse(this.#options.trustDomain, text)
    } catch (err) {
      throw this.#invalid(`${join(this.#options.directory, name)} does not hold a SPIFFE bundle of ${this.#options.trustDomain.name} (${(err as Error).message})`, err)
    }
  }

  /** A state made for another trust domain, or with(out) an upstream CA, is not silently turned into this one. */
  #checkConfiguration (manifest: Manifest): void {
    const { trustDomain, upstreamRoots, remoteUpstream = false } = this.#options
    const mismatch = (problem: string): CaError => new CaError('ERR_CA_STATE_MISMATCH',
      `CA state ${this.#manifestPath}: ${problem}. Changing this would change the trust domain's roots: move ${this.#options.directory} away to start a new CA (workloads then get new SVIDs, and peers need the new bundle)`)
    if (manifest.trustDomain !== trustDomain.name) throw mismatch(`it belongs to trust domain ${manifest.trustDomain}, not ${trustDomain.name}`)
    const made = !manifest.upstream ? 'a self-signed root' : manifest.upstreamBundle === undefined ? 'an intermediate of an upstream CA from files (ca.upstream)' : 'a device CA of a SPIRE server (upstream)'
    const configured = remoteUpstream ? 'a device CA of a SPIRE server (upstream)' : upstreamRoots !== undefined ? 'an intermediate of an upstream CA from files (ca.upstream)' : 'a self-signed root'
    if (made !== configured) throw mismatch(`it was made as ${made}, but is now configured as ${configured}`)
  }

  async #readStateFile (name: string, manifestField: string): Promise<string> {
    const path = join(this.#options.directory, name)
    try {
      return await readFile(path, 'utf8')
    } catch (err) {
      throw this.#invalid(`${path}, named by ${manifestField} in ${MANIFEST_FILE}, cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, err)
    }
  }

  async #readKey (name: string, manifestField: string): Promise<KeyObject> {
    const pem = await this.#readStateFile(name, manifestField)
    const path = join(this.#options.directory, name)
    await this.#checkPrivate(path, 'key file', 'chmod 600')
    try {
      return decodePrivateKey(pem)
    } catch (err) {
      throw this.#invalid(`${path} does not hold a PEM private key (${(err as Error).message})`, err)
    }
  }

  async #loadAuthority (entry: ManifestAuthority, upstream: boolean): Promise<X509Authority> {
    const field = `the x509 entry ${entry.id}`
    const certPath = join(this.#options.directory, fileNames.x509Cert(entry.id))
    const privateKey = await this.#readKey(fileNames.x509Key(entry.id), field)
    let certs: X509Certificate[]
    try {
      certs = decodePem(await this.#readStateFile(fileNames.x509Cert(entry.id), field)).map(block => new X509Certificate(block.der))
    } catch (err) {
      if (err instanceof CaError) throw err
      throw this.#invalid(`${certPath} does not hold PEM certificates (${(err as Error).message})`, err)
    }
    const [cert, ...chain] = certs
    const idString = this.#options.trustDomain.idString
    if (cert === undefined || !cert.ca || cert.subjectAltName !== `URI:${idString}`) {
      throw this.#invalid(`${certPath} does not start with a CA certificate of ${idString}`)
    }
    if (upstream === (chain.length === 0 && cert.checkIssued(cert) && cert.verify(cert.publicKey))) {
      throw this.#invalid(`${certPath} holds ${upstream ? 'a self-signed root, but the state is under an upstream CA' : 'an intermediate, but the state is a self-signed root'}`)
    }
    if (keyTypeName(privateKey) === undefined || !keysMatch(privateKey, cert.publicKey)) {
      throw this.#invalid(`the key in ${fileNames.x509Key(entry.id)} does not belong to the certificate in ${certPath}`)
    }
    return await authorityOf(entry.id, entry.state, cert.raw, chain.map(link => link.raw), privateKey, upstream)
  }

  async #loadJwtKey (entry: ManifestJwtKey): Promise<JwtKey> {
    const name = fileNames.jwtKey(entry.kid)
    const privateKey = await this.#readKey(name, `the jwt entry ${entry.kid}`)
    if (keyTypeName(privateKey) !== entry.keyType) throw this.#invalid(`${name} does not hold the ${entry.keyType} key ${MANIFEST_FILE} says it does`)
    return jwtKeyOf(entry.kid, entry.state, entry.keyType, privateKey, new Date(entry.notBefore), new Date(entry.notAfter))
  }

  /** Files a crash left behind before a manifest named them (or after it stopped naming them): harmless, noted. */
  async #noteLeftovers (): Promise<void> {
    const leftovers = (await readdir(this.#options.directory)).filter(name => name !== MANIFEST_FILE && !this.#written.has(name))
    if (leftovers.length > 0) {
      this.#options.logger.debug({ directory: this.#options.directory, leftovers }, 'CA state: ignoring files state.json does not name (left by an interrupted write)')
    }
  }

  /** Persists a snapshot; on failure (ERR_CA_STATE_WRITE_FAILED) the state on disk is still the previous one. */
  async save (snapshot: CaSnapshot): Promise<void> {
    const { directory, logger } = this.#options
    const files = new Map<string, () => string>()
    for (const authority of snapshot.x509) {
      files.set(fileNames.x509Key(authority.id), () => encodePrivateKey(authority.privateKey))
      files.set(fileNames.x509Cert(authority.id), () => encodePem('CERTIFICATE', [authority.cert.raw, ...authority.upstreamChain]))
    }
    for (const key of snapshot.jwt) files.set(fileNames.jwtKey(key.id), () => encodePrivateKey(key.privateKey))
    const upstreamBundle = upstreamBundleFile(snapshot)
    if (upstreamBundle !== undefined) files.set(upstreamBundle.name, () => upstreamBundle.text)
    try {
      const fresh = [...files].filter(([name]) => !this.#written.has(name))
      for (const [name, content] of fresh) await writeNewFile(join(directory, name), content())
      if (fresh.length > 0) await syncDirectory(directory)
      await replaceFile(this.#manifestPath, JSON.stringify(this.#manifestOf(snapshot, upstreamBundle?.name), null, 2) + '\n', directory)
    } catch (err) {
      throw new CaError('ERR_CA_STATE_WRITE_FAILED', `cannot write the CA state in ${directory} (${(err as Error).message}); the previous state is still in place`, { cause: err })
    }
    const stale = [...this.#written].filter(name => !files.has(name))
    this.#written = new Set(files.keys())
    // The new manifest is durable and no longer names these; a failure here only leaves a harmless leftover.
    await Promise.all(stale.map(async name => await rm(join(directory, name), { force: true }).catch((err: Error) => {
      logger.warn({ file: join(directory, name), err }, 'CA state: could not remove a file of a dropped key')
    })))
  }

  #manifestOf (snapshot: CaSnapshot, upstreamBundle: string | undefined): Manifest {
    const { upstreamRoots, remoteUpstream = false } = this.#options
    return {
      version: 1,
      trustDomain: this.#options.trustDomain.name,
      upstream: upstreamRoots !== undefined || remoteUpstream,
      upstreamRoots: upstreamRoots ?? snapshot.upstreamBundle?.x509.authorities.map(root => root.fingerprint256) ?? [],
      ...(upstreamBundle === undefined ? {} : { upstreamBundle }),
      sequence: snapshot.sequence,
      x509: snapshot.x509.map(({ id, state }) => ({ id, state })),
      jwt: snapshot.jwt.map(({ id, state, keyType, notBefore, notAfter }) => ({
        kid: id, state, keyType, notBefore: notBefore.toISOString(), notAfter: notAfter.toISOString()
      }))
    }
  }
}

/** The upstream bundle's file: its name (from its content) and its text; none without one. */
function upstreamBundleFile (snapshot: CaSnapshot): { name: string, text: string } | undefined {
  if (snapshot.upstreamBundle === undefined) return undefined
  const text = snapshot.upstreamBundle.marshal()
  return { name: fileNames.upstreamBundle(createHash('sha256').update(text).digest('hex').slice(0, 16)), text }
}
