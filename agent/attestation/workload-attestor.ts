/**
 * The workload attestor: turns a caller's kernel peer credentials into every selector the kernel (and Docker, when
 * configured) vouches for. Nothing the caller sends is consulted (DESIGN.md, security invariant 3).
 */
import { pino } from 'pino'
import type { Logger } from 'pino'
import { compareSelectors, formatSelector, parseSelector } from '../store/selectors'
import type { Selector } from '../store/selectors'
import { parseContainerId } from './container-id'
import { dockerSelectorTexts, inspectContainer } from './docker'
import { AttestationError, readProcFile } from './errors'
import { ExeHashCache } from './exe-hash'
import type { PeerCredentials } from './peer-credentials'
import { isSameProcess } from './process-pin'
import type { ProcessPin } from './process-pin'
import { unixSelectorTexts } from './unix-selectors'

export interface AttestorOptions {
  /** The Docker Engine API socket, e.g. /var/run/docker.sock; without it only the container id is reported. */
  docker?: { socketPath: string }
  /** Executables larger than this (default 256 MiB) get no unix:sha256 selector; logged. */
  maxHashBytes?: number
  /** Defaults to a silent logger; the agent passes its own. */
  logger?: Logger
  /** Where /proc is mounted; tests point it at a stand-in. */
  procRoot?: string
}

export class WorkloadAttestor {
  readonly #docker: { socketPath: string } | undefined
  readonly #hashes: ExeHashCache
  readonly #logger: Logger
  readonly #procRoot: string

  constructor (options: AttestorOptions = {}) {
    this.#docker = options.docker
    this.#hashes = new ExeHashCache({ maxBytes: options.maxHashBytes })
    this.#logger = (options.logger ?? pino({ level: 'silent' })).child({ component: 'attestation' })
    this.#procRoot = options.procRoot ?? '/proc'
  }

  /** How many executables were read and hashed so far (cache misses): for tests and metrics. */
  get exeHashesComputed (): number {
    return this.#hashes.computed
  }

  /**
   * Every selector the kernel (and Docker, when configured) vouches for: canonical, de-duplicated, sorted.
   * Throws AttestationError ERR_ATTESTATION_PROCESS_GONE when the caller exits before /proc is read. The caller still
   * has to check its ProcessPin afterwards: the pid may have been reused while we read.
   */
  async attest (caller: PeerCredentials): Promise<Selector[]> {
    return await this.#attestPid(caller.pid)
  }

  /**
   * Attests a pinned process: its selectors, or undefined when afterwards its pid no longer names that process (it
   * exited, or the pid was reused while /proc was read, so the selectors might describe another process).
   */
  async attestPinned (pin: ProcessPin): Promise<Selector[] | undefined> {
    const selectors = await this.#attestPid(pin.pid)
    return isSameProcess(pin, this.#procRoot) ? selectors : undefined
  }

  async #attestPid (pid: number): Promise<Selector[]> {
    if (!Number.isSafeInteger(pid) || pid <= 0) {
      throw new AttestationError('ERR_ATTESTATION_PROCESS_GONE', `cannot attest pid ${pid}: not a process id`)
    }
    const [unix, container] = await Promise.all([
      unixSelectorTexts(pid, this.#procRoot, this.#hashes, this.#logger),
      this.#containerSelectorTexts(pid)
    ])
    return this.#validated([...unix, ...container], pid)
  }

  async #containerSelectorTexts (pid: number): Promise<string[]> {
    const container = parseContainerId(await readProcFile(this.#procRoot, pid, 'cgroup', 'utf8'))
    if (container.kind === 'ambiguous') {
      this.#logger.warn({ pid, ids: container.ids }, 'process is in cgroups of several containers: no docker selectors')
    }
    if (container.kind !== 'found') return []
    const texts = [`docker:container_id:${container.id}`]
    if (this.#docker === undefined) return texts
    try {
      return [...texts, ...dockerSelectorTexts(await inspectContainer(this.#docker.socketPath, container.id))]
    } catch (err) {
      // A dead or confused Docker daemon must not deny every workload its unix identity: entries that need docker
      // selectors simply do not match until Docker answers again.
      this.#logger.warn({ pid, containerId: container.id, socketPath: this.#docker.socketPath, err: (err as Error).message },
        'cannot inspect the container with Docker: attesting without docker label/image/env selectors')
      return texts
    }
  }

  /** Keeps only selectors the store accepts (entries match by exact text), de-duplicated and sorted. */
  #validated (texts: string[], pid: number): Selector[] {
    const selectors = new Map<string, Selector>()
    for (const text of texts) {
      try {
        const selector = parseSelector(text)
        selectors.set(formatSelector(selector), selector)
      } catch (err) {
        this.#logger.debug({ pid, err: (err as Error).message }, 'skipping a fact that is not a valid selector')
      }
    }
    return [...selectors.values()].sort(compareSelectors)
  }
}
