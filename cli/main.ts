#!/usr/bin/env node
/** The `chaperone` executable: parses argv with the command tree of program.ts and reports failures on stderr. */
import { buildProgram } from './index'

buildProgram().parseAsync(process.argv).catch((err: unknown) => {
  console.error(`chaperone: ${err instanceof Error ? err.message : String(err)}`)
  process.exitCode = 1
})
