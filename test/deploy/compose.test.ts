import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import pino from 'pino'
import { Agent } from '../../agent/agent'
import { AdminClient } from '../../agent/admin/client'
import { loadAgentConfig } from '../../agent/config'
import { compilePolicy } from '../../policy/engine'
import { loadPolicy } from '../../policy/document'
import { lintPolicyFile } from '../../policy/lint'
import { CLI_BIN, CLI_SKIP as skip, runCli, runProcess } from '../helpers/cli'
import { ROOT, entriesSelecting, mountOf, mounts, namedVolumeAt, read, readCompose, registeredEntries } from '../helpers/compose-files'

// The docker-compose deployment (docker-compose.yml, Dockerfile, deploy/), checked in seconds: the files' structure
// and the invariants the deployment relies on, the scripts run with stand-ins for what only exists in a container,
// and the built CLI asked whether every command the files use exists. `npm run test:deploy` (test/deploy/live/)
// runs the same files on a real Docker engine; the topology is also tested with network namespaces elsewhere.
// The node-mode variant (docker-compose.node.yml): compose-node.test.ts.

const compose = readCompose('docker-compose.yml')
const services = Object.entries(compose.services)
const ours = services.filter(([, s]) => s.build !== undefined)
const sidecars = services.filter(([, s]) => s.entrypoint?.includes('/deploy/sidecar-entrypoint.sh') === true)
const apps = services.filter(([, s]) => s.build === undefined)
/** The app that runs in a sidecar's network namespace. */
const appOf = (sidecar: string): string => apps.find(([, s]) => s.network_mode === `service:${sidecar}`)?.[0] ?? ''
const agentConfig = loadAgentConfig(join(ROOT, 'deploy', 'agent.yaml'))
const scripts = readdirSync(join(ROOT, 'deploy')).filter(f => f.endsWith('.sh')).map(f => `deploy/${f}`)
const entries = registeredEntries()

void t.test('deploy – every app runs in its own sidecar\'s network namespace, started once the sidecar is healthy', async t => {
  t.equal(compose.networks['proxy-redirect']?.external, true, 'proxy-redirect is external: the operator creates it')
  t.ok(apps.length >= 2 && sidecars.length === apps.length, 'one sidecar per app')
  for (const [name, app] of apps) {
    const sidecar = name.replace(/^app-/, 'sidecar-')
    t.match(app.image, /^[\w./-]+:[\w.-]+$/, `${name} runs a stock image at a pinned tag`)
    t.not(app.image?.split(':')[1], 'latest', `${name}'s tag is not latest`)
    t.equal(app.network_mode, `service:${sidecar}`, `${name} joins ${sidecar}'s network namespace`)
    t.equal(app.networks ?? app.ports ?? app.expose, undefined, `${name} has no network or port of its own`)
    t.same(app.depends_on?.[sidecar], { condition: 'service_healthy' }, `${name} starts only once ${sidecar} is healthy (its iptables in place)`)
  }
  for (const [name, sidecar] of sidecars) {
    const app = appOf(name)
    t.ok(sidecar.cap_add?.includes('NET_ADMIN'), `${name} has NET_ADMIN for iptables`)
    t.equal(sidecar.ports ?? sidecar.expose, undefined, `${name} publishes no ports`)
    t.equal(sidecar.network_mode, undefined, `${name} owns its network namespace`)
    t.same(sidecar.networks, { 'proxy-redirect': { aliases: [app] } }, `${name} is on proxy-redirect under ${app}'s name`)
    t.same(sidecar.healthcheck?.test, ['CMD', 'chaperone', 'proxy', 'wait', '--admin', '127.0.0.1:15000', '--timeout', '2'], `${name} is healthy once its proxy is ready`)
  }
  // Debian's docker-compose 1.29 rejects `restart:` under depends_on (a Compose v2.17 addition).
  for (const [name, service] of services) {
    t.notOk(Object.values(service.depends_on ?? {}).some(dep => 'restart' in dep), `${name}'s depends_on is one docker-compose 1.29 accepts`)
  }
})

void t.test('deploy – our services build the image; the Workload API socket is read-write for the agent only', async t => {
  t.ok(statSync(join(ROOT, 'Dockerfile')).isFile(), 'the Dockerfile exists')
  for (const [name, service] of ours) t.equal(service.build, '.', `${name} builds the repository's Dockerfile`)
  const agent = compose.services.agent
  const sockets = namedVolumeAt(agent, dirname(agentConfig.socket))
  const admin = namedVolumeAt(agent, dirname(agentConfig.adminSocket))
  t.ok(sockets !== undefined && !sockets.readOnly, 'the agent mounts the socket directory read-write, from a named volume')
  t.ok(admin !== undefined && admin.source !== sockets?.source, 'the admin socket is on a volume of its own')
  t.ok(mounts(agent).some(m => m.named && agentConfig.dataDir.startsWith(`${m.target}/`)), 'the agent\'s data is on a named volume')
  t.ok(agentConfig.dockerSocket !== undefined && mountOf(agent, agentConfig.dockerSocket)?.readOnly, 'the Docker socket is mounted, read-only')
  for (const [name, service] of services) {
    if (name === 'agent') continue
    const mount = mountOf(service, sockets?.source ?? '')
    if (sidecars.some(([n]) => n === name)) t.ok(mount?.readOnly === true && mount.target === sockets?.target, `${name} mounts the sockets read-only`)
    else t.equal(mount, undefined, `${name} does not mount the sockets`)
    t.equal(mountOf(service, admin?.source ?? '') !== undefined, name === 'register', `${name} ${name === 'register' ? 'mounts' : 'never sees'} the admin socket`)
  }
  t.equal(compose.services.register.environment?.CHAPERONE_ADMIN_SOCKET, agentConfig.adminSocket, 'register uses the agent\'s admin socket')
  t.same(compose.services.agent.healthcheck?.test, ['CMD', 'chaperone', 'healthcheck', '--socket', `unix://${agentConfig.socket}`], 'the agent\'s healthcheck asks its socket')
  t.match(read('deploy/sidecar-entrypoint.sh'), `--workload-api unix://${agentConfig.socket}`, 'the sidecars use the agent\'s socket')
  for (const name of Object.keys(compose.volumes)) t.ok(services.some(([, s]) => mountOf(s, name)), `volume ${name} is used`)
})

void t.test('deploy – the policy directory is mounted read-only and allows app-a\'s calls to app-b only', async t => {
  const policyPath = /--policy (\S+)/.exec(read('deploy/sidecar-entrypoint.sh'))?.[1] ?? ''
  for (const [name, sidecar] of sidecars) {
    const mount = mounts(sidecar).find(m => policyPath.startsWith(`${m.target}/`))
    t.ok(mount?.readOnly, `${name} mounts the policy read-only`)
    t.ok(statSync(join(ROOT, mount?.source ?? '')).isDirectory(), `${name} mounts a directory, so replaced files are seen`)
    t.equal(relative(join(ROOT, mount?.source ?? ''), join(ROOT, 'deploy', 'policy', 'policy.yaml')), relative(mount?.target ?? '', policyPath), `${name}'s --policy is deploy/policy/policy.yaml`)
  }
  const file = join(ROOT, 'deploy', 'policy', 'policy.yaml')
  const lint = lintPolicyFile(file)
  t.same(lint.problems, [], 'the policy lints clean, without warnings')
  // The sample traffic: app-a's URL names app-b's service and port.
  const url = /http:\/\/([\w-]+):(\d+)\//.exec(compose.services['app-a'].command?.join(' ') ?? '')
  t.equal(url?.[1], 'app-b', 'app-a calls app-b')
  const idOf = (app: string): string => `spiffe://${agentConfig.trustDomain.name}/${app}`
  const { decide } = compilePolicy(loadPolicy(file))
  const port = Number(url?.[2])
  const get = { method: 'GET', path: '/' }
  t.equal(decide({ from: idOf('app-a'), to: idOf('app-b'), port, http: get }).allow, true, 'app-a → app-b: GET is allowed')
  t.equal(decide({ from: idOf('app-a'), to: idOf('app-b'), port, http: { method: 'POST', path: '/' } }).allow, false, 'app-a → app-b: POST is denied')
  t.equal(decide({ from: idOf('app-b'), to: idOf('app-a'), port, http: get }).allow, false, 'app-b → app-a is denied')
  t.equal(decide({ from: idOf('app-a'), to: idOf('app-b'), port: port + 1, http: get }).allow, false, 'other ports are denied')
  const httpPorts = compose.services['sidecar-a'].command?.join(' ').match(/--transparent-http-ports (\S+)/)?.[1].split(',').map(Number)
  t.same(sidecars.map(([, s]) => s.command), sidecars.map(() => compose.services['sidecar-a'].command), 'every sidecar has the same command')
  t.ok(httpPorts?.includes(port), 'the sidecars serve the app\'s port in HTTP mode, where the rule\'s methods apply')
})

void t.test('deploy – each sidecar\'s labels select exactly its own entry', async t => {
  t.equal(entries.length, sidecars.length, 'one entry per sidecar')
  for (const [name, sidecar] of sidecars) {
    const matching = entriesSelecting(entries, sidecar)
    const app = appOf(name)
    t.same(matching.map(e => e.id), [`spiffe://${agentConfig.trustDomain.name}/${app}`], `${name} gets ${app}'s ID and no other`)
  }
})

void t.test('deploy – the Dockerfile builds on Node 20 and ships dist, the package files and iptables', async t => {
  const text = read('Dockerfile').replace(/\\\n/g, ' ')
  const nodeImage = /^ARG NODE_IMAGE=(\S+)$/m.exec(text)?.[1] ?? ''
  const stages = text.split(/^FROM /m).slice(1).map(s => ({ base: s.split(/\s/)[0].replace('${NODE_IMAGE}', nodeImage), name: / AS (\S+)/.exec(s.split('\n')[0])?.[1], body: s }))
  const names = new Set(stages.map(s => s.name))
  for (const stage of stages) t.ok(names.has(stage.base) || /^node:20-\w+-slim$/.test(stage.base), `${stage.name ?? 'runtime'} builds on Node 20 slim or an earlier stage`)
  const runtime = stages[stages.length - 1].body
  const prodDeps = stages.find(s => /npm prune --omit=dev/.test(s.body))
  t.match(text, /^RUN npm ci$/m, 'the build installs every dependency with npm ci')
  t.equal(prodDeps?.base, 'build', 'the production dependencies are the build\'s, pruned: native modules compiled once')
  t.match(runtime, `COPY --from=${prodDeps?.name} /app/node_modules`, 'production node_modules, compiled in a stage with the toolchain')
  t.match(runtime, /COPY --from=build \/package\/ \.\//, 'the packed package: dist and the shipped files')
  t.match(runtime, /apt-get install[^\n]*\biptables\b/, 'iptables for init-iptables')
  t.match(runtime, /^ENTRYPOINT \["node", "\/app\/dist\/cli\/main\.js"\]$/m, 'the entrypoint is the chaperone command')
  t.match(runtime, /^ENV NODE_OPTIONS=--max-semi-space-size=1$/m, 'every node process of the image has the small young generation (bench/tuning.md)')
  t.match(runtime, /^USER 1337:1337$/m, 'non-root by default, as the sidecars\' proxy uid')
})

void t.test('deploy – the package the image unpacks has dist and every file the CLI loads', { skip }, async t => {
  // What `npm pack` puts in the image: dist/ and every file package.json ships.
  const pack = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' })
  const files = new Set((JSON.parse(pack.stdout) as Array<{ files: Array<{ path: string }> }>)[0].files.map(f => f.path))
  for (const path of ['package.json', 'dist/cli/main.js', 'agent/admin/admin.proto', 'spiffe/workload.proto', 'policy/schema.json']) t.ok(files.has(path), `the package ships ${path}`)
})

void t.test('deploy – shell scripts are POSIX sh or bash with set -eu, and parse', async t => {
  for (const script of scripts) {
    const text = read(script)
    t.match(text, /^#!(\/bin\/sh|\/usr\/bin\/env bash)\n/, `${script}: shebang`)
    t.match(text, /^set -eu/m, `${script}: set -eu`)
    t.equal(spawnSync(text.startsWith('#!/bin/sh') ? 'sh' : 'bash', ['-n', join(ROOT, script)]).status, 0, `${script} parses`)
  }
})

/** Resolves once the stand-ins have logged `count` lines (5 s at most). */
async function waitForLines (bin: { log: () => string[] }, count: number): Promise<void> {
  for (let waited = 0; bin.log().length < count && waited < 5000; waited += 50) await new Promise(resolve => setTimeout(resolve, 50))
}

/**
 * A directory of stand-in commands for PATH: each logs its arguments to `log`, then runs `body`. Like the real proxy,
 * each exits 0 on SIGTERM; the trap is set before the line is logged, so a test that signals once it sees the line
 * never catches a stand-in that cannot handle it yet.
 */
function standIns (commands: Record<string, string>): { dir: string, log: () => string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-deploy-'))
  for (const [name, body] of Object.entries(commands)) {
    writeFileSync(join(dir, name), `#!/bin/sh\ntrap 'exit 0' TERM\necho "${name} $*" >> "${dir}/log"\n${body}\n`)
    chmodSync(join(dir, name), 0o755)
  }
  return { dir, log: () => { try { return readFileSync(join(dir, 'log'), 'utf8').trim().split('\n') } catch { return [] } } }
}

/**
 * A stand-in that runs until SIGTERM, then exits 0 and takes its sleep with it: a sleep left behind would hold the
 * entrypoint's output pipes open, and this test process with them, for its full minute.
 */
const RUN_UNTIL_SIGNALLED = 'sleep 60 & child=$!; trap \'kill $child; exit 0\' TERM; wait $child'

void t.test('deploy – the sidecar entrypoint sets up iptables as root, then runs the proxy as the exempted uid', async t => {
  // The stand-in proxy runs until it is signalled, like the real one.
  const bin = standIns({ chaperone: '', setpriv: RUN_UNTIL_SIGNALLED })
  t.teardown(() => { rmSync(bin.dir, { recursive: true, force: true }) })
  const entrypoint = spawn('sh', [join(ROOT, 'deploy', 'sidecar-entrypoint.sh'), '--transparent-http-ports', '8080'], { env: { ...process.env, PATH: `${bin.dir}:${process.env.PATH ?? ''}` } })
  await waitForLines(bin, 2)
  entrypoint.kill('SIGTERM')
  const [status] = await once(entrypoint, 'exit') as [number | null]
  t.equal(status, 0, 'SIGTERM reaches the proxy, and the entrypoint exits with its status')
  const [init, proxy, ...rest] = bin.log()
  t.match(init, /^chaperone proxy init-iptables --proxy-uid 1337 --inbound-port 15006 --outbound-port 15001$/, 'first iptables, exempting uid 1337')
  t.match(proxy, /^setpriv --reuid=1337 --regid=1337 --clear-groups .*--bounding-set=-all .*chaperone proxy run .*--transparent-outbound 15001 --transparent-inbound 15006 .*--transparent-http-ports 8080$/, 'then the proxy as uid 1337 on those ports, with the service\'s command')
  t.same(rest, [], 'nothing else')
})

void t.test('deploy – a proxy that exits is started again in the same container, its iptables kept', async t => {
  // The first start fails at once; the second runs until it is signalled.
  const bin = standIns({ chaperone: '', setpriv: `if [ "$(grep -c '^setpriv' "$(dirname "$0")/log")" -lt 2 ]; then exit 3; fi; ${RUN_UNTIL_SIGNALLED}` })
  t.teardown(() => { rmSync(bin.dir, { recursive: true, force: true }) })
  const entrypoint = spawn('sh', [join(ROOT, 'deploy', 'sidecar-entrypoint.sh')], { env: { ...process.env, PATH: `${bin.dir}:${process.env.PATH ?? ''}` } })
  let stderr = ''
  entrypoint.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s })
  await waitForLines(bin, 3)
  entrypoint.kill('SIGTERM')
  await once(entrypoint, 'exit')
  const log = bin.log()
  t.equal(log.filter(l => l.startsWith('chaperone proxy init-iptables')).length, 1, 'iptables is set up once')
  t.equal(log.filter(l => l.startsWith('setpriv')).length, 2, 'the proxy is started again')
  t.match(stderr, 'the proxy exited with status 3; starting it again in 1s (iptables stays in place)', 'and the restart is said')
})

void t.test('deploy – register-entries.sh registers against a real agent, and again without error', { skip }, async t => {
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-register-'))
  const agent = await Agent.start(loadAgentConfig(undefined, {
    trustDomain: agentConfig.trustDomain.name, dataDir: join(dir, 'data'), socket: join(dir, 'w.sock'), adminSocket: join(dir, 'a.sock'), serverSocket: join(dir, 's.sock')
  }), pino({ level: 'silent' }))
  const admin = new AdminClient(join(dir, 'a.sock'))
  const bin = standIns({ chaperone: `exec "${process.execPath}" "${CLI_BIN}" "$@"` })
  t.teardown(async () => {
    admin.close()
    await agent.stop()
    rmSync(dir, { recursive: true, force: true })
    rmSync(bin.dir, { recursive: true, force: true })
  })
  const env = { PATH: `${bin.dir}:${process.env.PATH ?? ''}`, CHAPERONE_ADMIN_SOCKET: join(dir, 'a.sock') }
  for (const attempt of ['first', 'second']) {
    const run = await runProcess('sh', [join(ROOT, 'deploy', 'register-entries.sh')], env)
    t.equal(run.status, 0, `${attempt} run: ${run.stderr}`)
  }
  const stored = (await admin.listEntries()).map(e => ({ id: e.spiffe_id, selectors: e.selectors })).sort((a, b) => a.id.localeCompare(b.id))
  t.same(stored, entries, 'each entry once, as written')
})

/** Every `chaperone …` command line in the compose file (our image's entrypoint is chaperone), the scripts and the README's deployment steps. */
function commandLines (): string[] {
  const lines = ours.filter(([, s]) => s.entrypoint === undefined).map(([, s]) => `chaperone ${s.command?.join(' ') ?? ''}`)
  // A sidecar's command is appended to the entrypoint's `chaperone proxy run`.
  lines.push(...sidecars.map(([, s]) => `chaperone proxy run ${s.command?.join(' ') ?? ''}`))
  for (const [, s] of services) if (s.healthcheck !== undefined) lines.push(s.healthcheck.test.slice(1).join(' '))
  for (const script of scripts) lines.push(...read(script).replace(/\\\n/g, ' ').split('\n').filter(l => !/^\s*#/.test(l)))
  const deployment = read('README.md').split(/^## Deployment: /m)[1]?.split(/^## /m)[0] ?? ''
  for (const block of deployment.matchAll(/^```sh\n([\s\S]*?)^```/gm)) lines.push(...block[1].replace(/\\\n/g, ' ').split('\n'))
  return lines.flatMap(line => [...line.matchAll(/(?:^|[\s(])chaperone((?:\s+[a-z][\w-]*){1,2})([^|;&)]*)/g)])
    .map(m => `${m[1].trim()} ${m[2].match(/--[a-z][\w-]*/g)?.join(' ') ?? ''}`.trim())
}

void t.test('deploy – every chaperone command and flag used is one the built CLI has', { skip }, async t => {
  const used = new Map<string, Set<string>>()
  for (const line of commandLines()) {
    const words = line.split(' ')
    const sub = words.filter(w => !w.startsWith('--')).join(' ')
    used.set(sub, new Set([...used.get(sub) ?? [], ...words.filter(w => w.startsWith('--'))]))
  }
  t.ok(['agent run', 'healthcheck', 'entry create', 'proxy init-iptables', 'proxy run'].every(sub => used.has(sub)), `found: ${[...used.keys()].join(', ')}`)
  for (const [sub, flags] of used) {
    const help = await runCli([...sub.split(' '), '--help'])
    // Commander answers `--help` after an unknown subcommand with the parent's help and exit 0: the usage line tells.
    const exists = help.status === 0 && help.stdout.startsWith(`Usage: chaperone ${sub} `)
    t.ok(exists, `chaperone ${sub} exists`)
    for (const flag of flags) t.ok(new RegExp(`${flag}(?![\\w-])`).test(help.stdout), `chaperone ${sub} has ${flag}`)
  }
})
