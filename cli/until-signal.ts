/** How a proxy process runs in the foreground: SIGHUP reloads, SIGINT or SIGTERM stops it (after `stop`, exit 0). */
import type { Logger } from 'pino'

export async function serveUntilStopped (logger: Logger, reload: () => void, stop: () => Promise<void>): Promise<void> {
  process.on('SIGHUP', reload)
  const signal = await new Promise<string>(resolve => {
    process.once('SIGINT', resolve)
    process.once('SIGTERM', resolve)
  })
  process.off('SIGHUP', reload)
  logger.info({ signal }, 'stopping')
  await stop()
  logger.flush()
}
