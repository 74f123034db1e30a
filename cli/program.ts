/**
 * The `chaperone` command's tree: each subcommand is thin wiring to the part that does the work.
 */
import { Command } from 'commander'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { describeDemo } from './demo'

/** The package's version, found by walking up from this file (it runs from cli/ in tests and dist/cli/ when built). */
function packageVersion (): string {
  for (let dir = __dirname; ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string, version?: string }
      if (pkg.name === 'chaperone' && pkg.version !== undefined) return pkg.version
    } catch {
      // no package.json here; keep walking up
    }
    if (dirname(dir) === dir) return '0.0.0'
  }
}

export function buildProgram (): Command {
  const program = new Command('chaperone')
    .description('SPIFFE workload identities, mutual TLS and a who-can-talk-to-whom policy between apps, with zero changes to the apps')
    .version(packageVersion())
    .showHelpAfterError()

  program.command('demo')
    .description('run a demo mesh on loopback (what `npm start` runs)')
    .action(() => { program.configureOutput().writeOut?.(describeDemo()) })

  return program
}
