/**
 * The configuration file's apps, kept current: on a change of the file (its folder is watched, so an editor's
 * write-and-rename is seen) or SIGHUP, the file is read again and the node proxy serves its apps from then on. A
 * file that does not load is logged with every problem and the apps in force stay. Other settings are read at
 * start only: a change to them is logged as needing a restart.
 */
import { watch } from 'node:fs'
import type { FSWatcher } from 'node:fs'
import { basename, dirname } from 'node:path'
import type { Logger } from 'pino'
import { loadNodeConfig } from './config'
import type { NodeConfig } from './config'

const DEBOUNCE_MS = 100

export class NodeConfigWatch {
  readonly #file: string
  readonly #apply: (config: NodeConfig) => Promise<void>
  readonly #logger: Logger
  readonly #watcher: FSWatcher
  #started: NodeConfig
  #timer: NodeJS.Timeout | undefined

  constructor (started: NodeConfig, apply: (config: NodeConfig) => Promise<void>, logger: Logger) {
    this.#file = started.file
    this.#started = started
    this.#apply = apply
    this.#logger = logger
    this.#watcher = watch(dirname(this.#file), (_event, name) => {
      if (name !== null && name !== basename(this.#file)) return
      clearTimeout(this.#timer)
      this.#timer = setTimeout(() => { void this.reload('change') }, DEBOUNCE_MS)
    })
  }

  async reload (trigger: 'change' | 'sighup'): Promise<void> {
    let config: NodeConfig
    try {
      config = loadNodeConfig(this.#file)
    } catch (err) {
      this.#logger.error({ event: 'node_config_rejected', trigger, file: this.#file, err: (err as Error).message }, 'the configuration does not load: the apps in force stay')
      return
    }
    if (settingsOf(this.#started) !== settingsOf(config)) {
      this.#logger.warn({ event: 'node_config_restart_needed', file: this.#file }, 'settings other than apps changed: they take effect at the next start')
    }
    this.#logger.info({ event: 'node_config_reloaded', trigger, apps: config.apps.length }, 'apps reloaded')
    this.#started = { ...this.#started, apps: config.apps }
    await this.#apply(config)
  }

  close (): void {
    clearTimeout(this.#timer)
    this.#watcher.close()
  }
}

/** Every setting but the apps, comparable as text. */
function settingsOf (config: NodeConfig): string {
  return JSON.stringify(config, (key, value: unknown) => key === 'apps' ? undefined : value instanceof Set ? [...value as Set<unknown>] : value)
}
