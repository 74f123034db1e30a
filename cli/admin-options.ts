/** What every admin command shares: the --admin-socket and --json options, a client, and printing results. */
import { InvalidArgumentError } from 'commander'
import type { Command } from 'commander'
import type { AdminClient } from '../agent/admin/client'
import { DURATION_FORMS, parseDuration } from '../config/duration'

export const DEFAULT_ADMIN_SOCKET = '/run/chaperone/admin.sock'

export interface AdminOptions { adminSocket: string, json?: boolean }

/** Adds --admin-socket (default: $CHAPERONE_ADMIN_SOCKET, else the agent's default) and --json. */
export function withAdminOptions (command: Command): Command {
  return command
    .option('--admin-socket <path>', 'the agent\'s admin socket (env CHAPERONE_ADMIN_SOCKET)', process.env.CHAPERONE_ADMIN_SOCKET ?? DEFAULT_ADMIN_SOCKET)
    .option('--json', 'print JSON instead of text')
}

/** Runs `work` with a client for the command's admin socket and closes it afterwards. */
export async function withAdmin<T> (options: AdminOptions, work: (client: AdminClient) => Promise<T>): Promise<T> {
  const { AdminClient } = await import('../agent/admin/client.js')
  const client = new AdminClient(options.adminSocket)
  try {
    return await work(client)
  } finally {
    client.close()
  }
}

/** Prints JSON with --json, else the text form. */
export function print (options: { json?: boolean }, value: unknown, text: () => string): void {
  process.stdout.write(options.json === true ? `${JSON.stringify(value, null, 2)}\n` : text())
}

/** Commander parser for a TTL: a duration as in the configuration files (`600`, `10m`, `1h`), in seconds. */
export function parseTtl (value: string): number {
  const seconds = parseDuration(value)
  if (seconds === undefined) throw new InvalidArgumentError(`a TTL is a duration: ${DURATION_FORMS}.`)
  return seconds
}

/** Commander parser for a port: 1–65535. */
export function parsePort (value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 65535) throw new InvalidArgumentError('a port is a whole number from 1 to 65535.')
  return Number(value)
}

/** Commander collector for repeatable options. */
export function collect (value: string, previous: string[] = []): string[] {
  return [...previous, value]
}
