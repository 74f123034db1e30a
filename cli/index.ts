/**
 * cli/ — the `chaperone` command: thin wiring of subcommands to the parts (spiffe/, policy/, agent/, proxy/).
 * main.ts is the executable entry; buildProgram gives the command tree to tests and embedders.
 */
export { buildProgram } from './program'
