import t from 'tap'
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import pino from 'pino'
import { parse } from 'yaml'
import { Agent } from '../../agent/agent'
import { AdminClient } from '../../agent/admin/client'
import { loadAgentConfig } from '../../agent/config'
import { compilePolicy } from '../../policy/engine'
import { loadPolicy } from '../../policy/document'
import { lintPolicyFile } from '../../policy/lint'
import { CLI_BIN, CLI_SKIP as skip, runCli, runProcess } from '../helpers/cli'

// The docker-compose deployment (docker-compose.yml, Dockerfile, deploy/). No Docker engine runs here (DESIGN.md),
// so nothing is started in containers: these tests check the files' structure and the invariants the deployment
// relies on, run the scripts with stand-ins for what only exists in a container, and ask the built CLI whether
// every command the files use exists. The same topology is tested for real with network namespaces elsewhere.

const ROOT = join(__dirname, '..', '..')
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8')

interface Service {
  build?: string
  image?: string
  user?: string
  entrypoint?: string[]
  command?: string[]
  network_mode?: string
  networks?: string[]
  cap_add?: string[]
  ports?: unknown[]
  expose?: unknown[]
  labels?: Record<string, string>
  volumes?: string[]
  environment?: Record<string, string>
  healthcheck?: { test: string[] }
}
interface Compose { services: Record<string, Service>, networks: Record<string, { external?: boolean }>, volumes: Record<string, unknown> }

// merge: compose's `<<` merge keys (the sidecars share an extension field).
const compose = parse(read('docker-compose.yml'), { merge: true }) as Compose
const services = Object.entries(compose.services)
const ours = services.filter(([, s]) => s.build !== undefined)
const sidecars = services.filter(([, s]) => s.network_mode?.startsWith('service:') === true)
const apps = services.filter(([, s]) => s.build === undefined)
const agentConfig = loadAgentConfig(join(ROOT, 'deploy', 'agent.yaml'))
const scripts = readdirSync(join(ROOT, 'deploy')).filter(f => f.endsWith('.sh')).map(f => `deploy/${f}`)

interface Mount { source: string, target: string, readOnly: boolean, named: boolean }
/** Compose's short volume syntax, SOURCE:TARGET[:MODE]; a source without a path is a named volume. */
function mounts (service: Service): Mount[] {
  return (service.volumes ?? []).map(text => {
    const [source, target, mode] = text.split(':')
    return { source, target, readOnly: mode === 'ro', named: !/^[./~]/.test(source) }
  })
}
const mountOf = (service: Service, source: string): Mount | undefined => mounts(service).find(m => m.source === source)
const namedVolumeAt = (service: Service, dir: string): Mount | undefined => mounts(service).find(m => m.named && m.target === dir)

/** The entries deploy/register-entries.sh registers: `register SPIFFE_ID SELECTOR…` lines. */
const entries = [...read('deploy/register-entries.sh').matchAll(/^register (spiffe:\/\/\S+)((?: \S+)+)$/gm)]
  .map(m => ({ id: m[1], selectors: m[2].trim().split(' ') }))

void t.test('deploy – every app is on the external proxy-redirect network, beside a sidecar in its namespace', async t => {
  t.equal(compose.networks['proxy-redirect']?.external, true, 'proxy-redirect is external: the operator creates it')
  t.ok(apps.length >= 2 && sidecars.length === apps.length, 'one sidecar per app')
  for (const [name, app] of apps) {
    t.same(app.networks, ['proxy-redirect'], `${name} is on proxy-redirect`)
    t.match(app.image, /^[\w./-]+:[\w.-]+$/, `${name} runs a stock image at a pinned tag`)
    t.not(app.image?.split(':')[1], 'latest', `${name}'s tag is not latest`)
    const mine = sidecars.filter(([, s]) => s.network_mode === `service:${name}`)
    t.same(mine.map(([n]) => n), [name.replace(/^app-/, 'sidecar-')], `${name} has its own sidecar in its network namespace`)
  }
  for (const [name, sidecar] of sidecars) {
    t.ok(sidecar.cap_add?.includes('NET_ADMIN'), `${name} has NET_ADMIN for iptables`)
    t.equal(sidecar.ports ?? sidecar.expose, undefined, `${name} publishes no ports`)
    t.equal(sidecar.networks, undefined, `${name} has no network of its own`)
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
  t.equal(decide({ from: idOf('app-a'), to: idOf('app-b'), port }).allow, true, 'app-a → app-b is allowed')
  t.equal(decide({ from: idOf('app-b'), to: idOf('app-a'), port }).allow, false, 'app-b → app-a is denied')
  t.equal(decide({ from: idOf('app-a'), to: idOf('app-b'), port: port + 1 }).allow, false, 'other ports are denied')
})

void t.test('deploy – each sidecar\'s labels select exactly its own entry', async t => {
  t.equal(entries.length, sidecars.length, 'one entry per sidecar')
  for (const [name, sidecar] of sidecars) {
    const has = new Set(Object.entries(sidecar.labels ?? {}).map(([k, v]) => `docker:label:${k}:${v}`))
    const matching = entries.filter(e => e.selectors.every(s => has.has(s)))
    const app = sidecar.network_mode?.slice('service:'.length) ?? ''
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
  const prodDeps = stages.find(s => /npm ci --omit=dev/.test(s.body))
  t.match(text, /^RUN npm ci$/m, 'the build installs every dependency with npm ci')
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

/** A directory of stand-in commands for PATH: each logs its arguments to `log`, then runs `body`. */
function standIns (commands: Record<string, string>): { dir: string, log: () => string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-deploy-'))
  for (const [name, body] of Object.entries(commands)) {
    writeFileSync(join(dir, name), `#!/bin/sh\necho "${name} $*" >> "${dir}/log"\n${body}\n`)
    chmodSync(join(dir, name), 0o755)
  }
  return { dir, log: () => { try { return readFileSync(join(dir, 'log'), 'utf8').trim().split('\n') } catch { return [] } } }
}

void t.test('deploy – the sidecar entrypoint sets up iptables as root, then runs the proxy as the exempted uid', async t => {
  const bin = standIns({ chaperone: '', setpriv: '' })
  t.teardown(() => { rmSync(bin.dir, { recursive: true, force: true }) })
  const run = await runProcess('sh', [join(ROOT, 'deploy', 'sidecar-entrypoint.sh')], { PATH: `${bin.dir}:${process.env.PATH ?? ''}` })
  t.equal(run.status, 0, `runs to the end: ${run.stderr}`)
  const [init, proxy, ...rest] = bin.log()
  t.match(init, /^chaperone proxy init-iptables --proxy-uid 1337 --inbound-port 15006 --outbound-port 15001$/, 'first iptables, exempting uid 1337')
  t.match(proxy, /^setpriv --reuid=1337 --regid=1337 --clear-groups .*--bounding-set=-all .*chaperone proxy run .*--transparent-outbound 15001 --transparent-inbound 15006 /, 'then the proxy as uid 1337 on those ports')
  t.same(rest, [], 'nothing else')
})

void t.test('deploy – register-entries.sh registers against a real agent, and again without error', { skip }, async t => {
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-register-'))
  const agent = await Agent.start(loadAgentConfig(undefined, {
    trustDomain: agentConfig.trustDomain.name, dataDir: join(dir, 'data'), socket: join(dir, 'w.sock'), adminSocket: join(dir, 'a.sock')
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
  for (const [, s] of services) if (s.healthcheck !== undefined) lines.push(s.healthcheck.test.slice(1).join(' '))
  for (const script of scripts) lines.push(...read(script).replace(/\\\n/g, ' ').split('\n').filter(l => !/^\s*#/.test(l)))
  const deployment = read('README.md').split(/^## Deployment: /m)[1]?.split(/^## /m)[0] ?? ''
  for (const block of deployment.matchAll(/^```sh\n([\s\S]*?)^```/gm)) lines.push(...block[1].replace(/\\\n/g, ' ').split('\n'))
  return lines.flatMap(line => [...line.matchAll(/(?:^|[\s(])chaperone((?:\s+[a-z][\w-]*){1,2})([^|;&)]*)/g)])
    .map(m => `${m[1].trim()} ${m[2].match(/--[a-z][\w-]*/g)?.join(' ') ?? ''}`.trim())
}

// Being built alongside this deployment; until they land, their absence is a todo, not a failure.
const PENDING: Record<string, string> = {
  'proxy init-iptables': 'init-iptables lands with transparent mode',
  '--transparent-outbound': 'the transparent listeners land with transparent mode',
  '--transparent-inbound': 'the transparent listeners land with transparent mode'
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
    t.ok(exists, `chaperone ${sub} exists`, exists || PENDING[sub] === undefined ? {} : { todo: PENDING[sub] })
    for (const flag of flags) {
      const has = new RegExp(`${flag}(?![\\w-])`).test(help.stdout)
      t.ok(has, `chaperone ${sub} has ${flag}`, has || (PENDING[flag] ?? PENDING[sub]) === undefined ? {} : { todo: PENDING[flag] ?? PENDING[sub] })
    }
  }
})
