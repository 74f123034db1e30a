#!/usr/bin/env node
/** The `chaperone` executable: parses argv with the command tree of program.ts; errors go to stderr with an exit code. */
import { CommanderError } from 'commander'
import { buildProgram } from './index'
import { exitCodeOf } from './exit-codes'

buildProgram().parseAsync(process.argv).catch((err: unknown) => {
  // Commander has already printed its own usage errors.
  if (!(err instanceof CommanderError)) console.error(`chaperone: ${err instanceof Error ? err.message : String(err)}`)
  process.exitCode = exitCodeOf(err)
})
