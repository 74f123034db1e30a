/**
 * `chaperone proxy run` (the sidecar) and `chaperone proxy wait` (for app entrypoints: blocks until the sidecar
 * is ready). The common cases need no file: `--inbound LISTEN=TARGET`, `--outbound LISTEN=TARGET[@EXPECTED_ID][,port=PORT]`.
 */
import { get } from 'node:http'
import type { Command } from 'commander'
import { InvalidArgumentError } from 'commander'
import { DURATION_FORMS, parseDuration } from '../config/duration'
import { parseHostPort } from '../proxy/host-port'
import { cleanup as cleanupIptables, install as installIptables, installCommands } from '../proxy/listeners/iptables'
import type { IptablesOptions } from '../proxy/listeners/iptables'
import type { SidecarFlags } from '../proxy/config'
import { collect, parsePort } from './admin-options'
import { serveUntilStopped } from './until-signal'

const DEFAULT_ADMIN = '127.0.0.1:15000'

function parsePorts (value: string): number[] {
  return value.split(',').filter(part => part.trim() !== '').map(part => parsePort(part.trim()))
}

function parseUid (value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('a uid is a whole number.')
  return Number(value)
}

export function addProxyCommands (program: Command): void {
  const proxy = program.command('proxy').description('the sidecar: mutual TLS and the policy between apps')

  proxy.command('run')
    .description('run the sidecar (logs JSON lines to stderr; SIGTERM drains, then exits 0)')
    .option('-c, --config <file>', 'YAML (or JSON) configuration file; flags add listeners and override settings')
    .option('--workload-api <address>', 'the Workload API (default: $SPIFFE_ENDPOINT_SOCKET)')
    .option('--spiffe-id <id>', 'which identity to use when the Workload API gives several (default: the first)')
    .option('--policy <file>', 'the policy file (watched; reloaded on change and SIGHUP)')
    .option('--admin <host:port>', `the admin endpoints /live /ready /metrics /status (default ${DEFAULT_ADMIN})`)
    .option('--log-level <level>', 'fatal, error, warn, info, debug or trace')
    .option('--ready-timeout <duration>', 'how long to wait at start for the first SVID (default 30s)')
    .option('--inbound <listen=target>', 'mutual TLS in on LISTEN, plain TCP to TARGET (repeatable)', collect)
    .option('--inbound-http <listen=target>', 'the same in HTTP mode: per-request policy, X-Forwarded-Client-Cert (repeatable)', collect)
    .option('--outbound <listen=target[@id][,port=N]>', 'plain TCP in on LISTEN, mutual TLS to TARGET, whose ID must match; the policy decides at port N, the app\'s port behind TARGET (default: TARGET\'s port) (repeatable)', collect)
    .option('--outbound-http <listen=target[@id][,port=N]>', 'the same in HTTP mode (repeatable)', collect)
    .option('--transparent-outbound <port>', 'transparent mode: redirected outbound TCP arrives on this port (see init-iptables)', parsePort)
    .option('--transparent-inbound <port>', 'transparent mode: redirected inbound TCP arrives on this port, mutual TLS', parsePort)
    .option('--transparent-http-ports <ports>', 'transparent mode: comma-separated destination ports that speak HTTP (per-request policy, X-Forwarded-Client-Cert)', parsePorts)
    .option('--http-proxy <listen>', 'an explicit HTTP proxy (CONNECT and absolute-form) for apps that honour HTTP_PROXY (repeatable)', collect)
    .action(async (options: SidecarFlags & { config?: string }) => {
      const { config: file, ...flags } = options
      const [{ loadSidecarConfig }, { Sidecar }, { pino }] = await Promise.all([import('../proxy/config.js'), import('../proxy/sidecar.js'), import('pino')])
      const config = loadSidecarConfig(file, flags)
      const logger = pino({ level: config.logLevel }, pino.destination(2))
      const sidecar = await Sidecar.start(config, logger)
      process.stdout.write(`chaperone sidecar running as ${sidecar.services.identity.current?.context.spiffeId.toString() ?? '?'}\n${
        Object.entries(sidecar.addresses()).map(([name, address]) => `  ${name.padEnd(16)} ${address}`).join('\n')}\n`)
      await serveUntilStopped(logger, () => { sidecar.services.policy.reload('sighup') }, async () => { await sidecar.stop() })
    })

  proxy.command('init-iptables')
    .description('redirect this network namespace\'s TCP through the sidecar (its init step; needs root or NET_ADMIN)')
    .requiredOption('--proxy-uid <uid>', 'the uid the sidecar runs as: its own connections are not redirected', parseUid)
    .option('--inbound-port <port>', 'where inbound TCP is redirected (the sidecar\'s --transparent-inbound)', parsePort, 15006)
    .option('--outbound-port <port>', 'where the app\'s outbound TCP is redirected (the sidecar\'s --transparent-outbound)', parsePort, 15001)
    .option('--exclude-inbound-ports <ports>', 'comma-separated ports not redirected inbound (e.g. the admin port)', parsePorts, [])
    .option('--exclude-outbound-ports <ports>', 'comma-separated ports not redirected outbound', parsePorts, [])
    .option('--dry-run', 'print the iptables commands instead of running them')
    .option('--cleanup', 'remove the rules and chains init-iptables added')
    .action((flags: Omit<IptablesOptions, 'exempt'> & { proxyUid: number, dryRun?: boolean, cleanup?: boolean }) => {
      const { proxyUid, ...rest } = flags
      const options: IptablesOptions & { dryRun?: boolean, cleanup?: boolean } = { ...rest, exempt: { uid: proxyUid } }
      if (options.cleanup === true) {
        if (options.dryRun !== true) cleanupIptables()
        process.stdout.write(options.dryRun === true ? 'would remove the CHAPERONE_INBOUND and CHAPERONE_OUTPUT chains and their jumps\n' : 'removed the Chaperone redirect rules\n')
        return
      }
      if (options.dryRun === true) {
        process.stdout.write(installCommands(options).map(args => `iptables -t nat ${args.join(' ')}`).join('\n') + '\n')
        return
      }
      installIptables(options)
      process.stdout.write(`TCP in this network namespace now goes through the sidecar: inbound → :${options.inboundPort}, outbound → :${options.outboundPort} (uid ${proxyUid} exempt)\n`)
    })

  proxy.command('wait')
    .description('wait until the sidecar is ready (exit 0), or give up after --timeout (exit 1, saying what is missing)')
    .option('--admin <host:port>', 'the sidecar\'s admin address', DEFAULT_ADMIN)
    .option('--timeout <duration>', 'how long to wait: 60, 90s, 2m', '60')
    .action(async (options: { admin: string, timeout: string }, command: Command) => {
      const admin = parseHostPort(options.admin)
      // Fractions of a second too (an entrypoint's short wait, the tests').
      const seconds = /^\d*\.\d+$/.test(options.timeout) ? Number(options.timeout) : parseDuration(options.timeout) ?? NaN
      if (typeof admin === 'string') command.error(`error: --admin: ${admin}`, { exitCode: 2 })
      if (!Number.isFinite(seconds) || seconds <= 0) command.error(`error: --timeout is a duration: ${DURATION_FORMS}`, { exitCode: 2 })
      const deadline = Date.now() + seconds * 1000
      let last = 'no answer yet'
      while (Date.now() < deadline) {
        const answer = await readiness(options.admin)
        if (answer.ready) return
        last = answer.why
        await new Promise(resolve => setTimeout(resolve, 200))
      }
      process.stderr.write(`chaperone: the sidecar at ${options.admin} is not ready after ${seconds} s: ${last}\n`)
      process.exitCode = 1
    })
}

async function readiness (admin: string): Promise<{ ready: boolean, why: string }> {
  return await new Promise(resolve => {
    const req = get(`http://${admin}/ready`, { timeout: 2000 }, res => {
      let body = ''
      res.setEncoding('utf8').on('data', (chunk: string) => { body += chunk }).on('end', () => {
        const missing = (JSON.parse(body || '{}') as { missing?: string[] }).missing ?? []
        resolve({ ready: res.statusCode === 200, why: missing.join('; ') || `status ${res.statusCode ?? '?'}` })
      })
    })
    req.on('timeout', () => { req.destroy(new Error('timed out')) })
    req.on('error', err => { resolve({ ready: false, why: `cannot reach the admin endpoint (${err.message})` }) })
  })
}
