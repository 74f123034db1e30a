/**
 * What every benchmark that starts processes needs around its run: a clean-up that runs once, whether the run ends,
 * fails or is interrupted with Ctrl-C (no proxy, nginx or namespace left behind); and, run as a script on its own,
 * its lines printed and a failure turned into exit status 1.
 */

/** Runs `body`, then `cleanUp`; on SIGINT meanwhile, `cleanUp` and exit 130. */
export async function withCleanUp<T> (cleanUp: () => Promise<void>, body: () => Promise<T>): Promise<T> {
  const onSignal = (): void => { void cleanUp().finally(() => process.exit(130)) }
  process.once('SIGINT', onSignal)
  try {
    return await body()
  } finally {
    process.removeListener('SIGINT', onSignal)
    await cleanUp()
  }
}

/** `node dist/bench/…/run.js`: prints the benchmark's lines; a failure is printed and exits 1. */
export function printLines (bench: () => Promise<string[]>): void {
  bench().then(lines => { for (const line of lines) console.log(line) }, (err: unknown) => {
    console.error(err)
    process.exitCode = 1
  })
}
