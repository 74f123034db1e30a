/**
 * The `chaperone` command's tree: each subcommand is thin wiring to the part that does the work. A command loads
 * its part (the agent, the sidecar, gRPC, the CA's X.509 library) when it runs, with `await import()`, so that
 * `--help`, the admin commands and `proxy wait` start in a fraction of the time loading everything takes.
 */
import { Command } from 'commander'
import { packageVersion } from '../config/package-files'
import { join } from 'node:path'
import { addAgentCommand } from './agent-command'
import { addEntryCommands } from './entry-commands'
import { addBundleAndCaCommands } from './bundle-ca-commands'
import { addFleetCommands } from './fleet-commands'
import { addFederationCommands } from './federation-commands'
import { addApiCommands } from './api-commands'
import { addPolicyCommands } from './policy-commands'
import { addProxyCommands } from './proxy-command'
import { addNodeCommands } from './node-command'

export function buildProgram (): Command {
  const program = new Command('chaperone')
    .description('SPIFFE workload identities, mutual TLS and a who-can-talk-to-whom policy between apps, with zero changes to the apps')
    .version(packageVersion())
    // Errors are thrown, not exited on, so main.ts gives every failure its exit code (2 for bad input).
    .exitOverride()

  program.command('demo')
    .description('run a demo mesh on loopback: agent, apps, sidecars, an allowed and a denied call (what `npm start` runs)')
    .option('--once', 'make the two calls and stop, instead of running until Ctrl-C')
    .action(async (options: { once?: boolean }) => {
      const { runDemo } = await import('../demo/run.js')
      await runDemo(join(__dirname, 'main.js'), { once: options.once === true })
    })

  addAgentCommand(program)
  addEntryCommands(program)
  addBundleAndCaCommands(program)
  addFleetCommands(program)
  addFederationCommands(program)
  addApiCommands(program)
  addPolicyCommands(program)
  addProxyCommands(program)
  addNodeCommands(program)
  pointToHelp(program, 'chaperone')
  return program
}

/** A usage error is its one line and where to read the usage, not the whole help (15–25 lines) after it. */
function pointToHelp (command: Command, path: string): void {
  command.showHelpAfterError(`(see \`${path} --help\`)`)
  for (const sub of command.commands) pointToHelp(sub, `${path} ${sub.name()}`)
}
