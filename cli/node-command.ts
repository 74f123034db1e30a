/**
 * `chaperone node run`: node mode — one proxy per device serving every app's network namespace (see the README,
 * "Node mode"). Needs root, or CAP_SYS_ADMIN (setns), CAP_NET_ADMIN (iptables in app namespaces, the guard,
 * SO_MARK) and CAP_SYS_PTRACE (other processes' namespaces).
 */
import type { Command } from 'commander'
import { serveUntilStopped } from './until-signal'

export function addNodeCommands (program: Command): void {
  const node = program.command('node').description('node mode: one proxy per device for every app on the app network')

  node.command('run')
    .description('run the node proxy (logs JSON lines to stderr; SIGHUP reloads the policy and the apps; SIGTERM drains, then exits 0, leaving every app\'s redirect rules in place)')
    .requiredOption('-c, --config <file>', 'the node proxy\'s YAML (or JSON) configuration file')
    .action(async (options: { config: string }) => {
      const [{ loadNodeConfig }, { NodeProxy }, { NodeConfigWatch }, { pino }] = await Promise.all([
        import('../node/config.js'), import('../node/node-proxy.js'), import('../node/config-watch.js'), import('pino')
      ])
      const config = loadNodeConfig(options.config)
      const logger = pino({ level: config.logLevel }, pino.destination(2))
      const node = await NodeProxy.start(config, logger)
      const watch = new NodeConfigWatch(config, async reloaded => { await node.setApps(reloaded.apps) }, logger)
      const docker = config.docker === undefined ? '' : `, and the containers Docker runs on ${config.docker.network}`
      process.stdout.write(`chaperone node proxy running: ${config.apps.length} app(s) configured${docker}, admin ${node.adminAddress}\n`)
      await serveUntilStopped(logger, () => {
        node.parts.policy.reload('sighup')
        void watch.reload('sighup')
      }, async () => {
        watch.close()
        await node.stop()
      })
    })
}
