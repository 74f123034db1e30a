/**
 * `chaperone api fetch x509|jwt`, `api validate-jwt` and `healthcheck`: the Workload API as a workload sees it,
 * like `spire-agent api …` and `spire-agent healthcheck` (the files --write produces match SPIRE's names).
 */
import { InvalidArgumentError, Option } from 'commander'
import type { Command } from 'commander'
import { workloadEndpoint, ENDPOINT_SOCKET_ENV } from '../spiffe/workload-endpoint'
import { collect, print } from './admin-options'
import type { ApiOptions } from './workload-calls'

export const DEFAULT_WORKLOAD_SOCKET = 'unix:///run/chaperone/workload.sock'

/** Commander parser for --socket (and $SPIFFE_ENDPOINT_SOCKET): a bad address is a usage error, exit 2. */
function parseSocket (value: string): string {
  try {
    workloadEndpoint(value)
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message)
  }
  return value
}

function withApiOptions (command: Command): Command {
  return command
    .addOption(new Option('--socket <address>', 'the Workload API address: unix:///path or tcp://IP:port').env(ENDPOINT_SOCKET_ENV).default(DEFAULT_WORKLOAD_SOCKET).argParser(parseSocket))
    .option('--json', 'print JSON instead of text')
}

export function addApiCommands (program: Command): void {
  const api = program.command('api').description('call the Workload API as a workload does (like spire-agent api)')
  const fetch = api.command('fetch').description('fetch this process\'s SVIDs and bundles')

  withApiOptions(fetch.command('x509').description('fetch X509-SVIDs, their keys and bundles'))
    .option('--write <dir>', 'write svid.<i>.pem, svid.<i>.key (0600), bundle.<i>.pem and federated_bundle.<i>.<j>.pem')
    .action(async (options: ApiOptions & { write?: string }) => {
      const { summarize, withWorkload, writeX509 } = await import('./workload-calls.js')
      const response = await withWorkload(options, client => client.fetchX509Svid())
      const written = options.write === undefined ? [] : writeX509(options.write, response)
      const svids = summarize(response)
      print(options, { svids, written }, () => [
        `received ${svids.length} SVID${svids.length === 1 ? '' : 's'}`,
        ...svids.map(svid => [
          '',
          `SPIFFE ID       : ${svid.spiffe_id}`,
          `Hint            : ${svid.hint === '' ? '-' : svid.hint}`,
          `Valid from      : ${svid.not_before}`,
          `Valid until     : ${svid.not_after}`,
          `Trust domain    : ${svid.trust_domain}`,
          ...svid.federated_trust_domains.map(td => `Federated with  : ${td}`)
        ].join('\n')),
        ...written.map(path => `wrote ${path}`),
        ''
      ].join('\n'))
    })

  withApiOptions(fetch.command('jwt').description('fetch JWT-SVIDs for an audience, and the JWT bundles'))
    .requiredOption('--audience <aud>', 'an audience the token is for (repeatable)', collect)
    .option('--spiffe-id <id>', 'only the JWT-SVID of this SPIFFE ID')
    .action(async (options: ApiOptions & { audience: string[], spiffeId?: string }) => {
      const { withWorkload } = await import('./workload-calls.js')
      const [svids, bundles] = await withWorkload(options, async client => [await client.fetchJwtSvid(options.audience, options.spiffeId), await client.fetchJwtBundles()] as const)
      const jwks = Object.fromEntries([...bundles].map(([td, bundle]) => [td, bundle.toJwks()]))
      print(options, { svids: svids.map(s => ({ spiffe_id: s.spiffeId, hint: s.hint, token: s.token })), bundles: jwks }, () => [
        ...svids.map(s => `token(${s.spiffeId}):\n\t${s.token}`),
        ...Object.entries(jwks).map(([td, set]) => `bundle(spiffe://${td}):\n\t${JSON.stringify(set)}`),
        ''
      ].join('\n'))
    })

  withApiOptions(api.command('validate-jwt').argument('<token>').description('have the agent validate a JWT-SVID for an audience'))
    .requiredOption('--audience <aud>', 'the audience the token must be for')
    .action(async (token: string, options: ApiOptions & { audience: string }) => {
      const { withWorkload } = await import('./workload-calls.js')
      const result = await withWorkload(options, client => client.validateJwtSvid(token, options.audience))
      print(options, { spiffe_id: result.spiffeId, claims: result.claims }, () =>
        `SVID is valid.\nSPIFFE ID : ${result.spiffeId}\nClaims    : ${JSON.stringify(result.claims)}\n`)
    })

  withApiOptions(program.command('healthcheck').description('check that the agent serves the Workload API (gRPC health): exit 0 if SERVING'))
    .option('--shallow', 'only check that the socket accepts connections')
    .action(async (options: ApiOptions & { shallow?: boolean }) => {
      const { checkHealth } = await import('./workload-calls.js')
      await checkHealth(options.socket, options.shallow === true)
      const status = options.shallow === true ? 'REACHABLE' : 'SERVING'
      print(options, { status }, () => `agent is ${status === 'SERVING' ? 'healthy' : 'reachable'} (${options.socket})\n`)
    })
}
