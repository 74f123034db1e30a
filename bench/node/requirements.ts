/**
 * The commands node mode's benchmark needs besides the proxy benchmark's tools (wrk, nginx: tools.ts): found on
 * PATH or in an sbin folder (a non-login root shell may lack those in its PATH).
 */
import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'

/** ip (namespaces, veths, bridges), iptables (the redirect and the guard), nsenter (iptables in an app's namespace), setpriv (apps as their uids), curl (readiness), sysctl (forwarding between devices). */
export const NODE_BENCH_COMMANDS = ['ip', 'iptables', 'nsenter', 'setpriv', 'curl', 'sysctl'] as const

export function missingCommands (commands: readonly string[] = NODE_BENCH_COMMANDS, path = process.env.PATH ?? ''): string[] {
  const dirs = [...path.split(delimiter).filter(Boolean), '/usr/local/sbin', '/usr/sbin', '/sbin']
  const found = (command: string): boolean => dirs.some(dir => {
    try {
      accessSync(join(dir, command), constants.X_OK)
      return true
    } catch {
      return false
    }
  })
  return commands.filter(command => !found(command))
}
