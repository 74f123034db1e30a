import t from 'tap'
import { join } from 'node:path'
import { CLI_SKIP as skip, runProcess } from '../helpers/cli'

// The command tree loads no part until a command runs: `--help`, the admin commands and `proxy wait` must not pay
// for the agent, the sidecar, gRPC or the CA's X.509 library (loading them all took over a second per call).
const program = join(__dirname, '..', '..', 'dist', 'cli', 'program.js')

/** The modules a node process has loaded once `expression` (a value or a promise) has settled. */
async function modulesLoadedBy (expression: string): Promise<string[]> {
  const run = await runProcess(process.execPath, ['-e', `Promise.resolve(${expression}).then(() => process.stdout.write(JSON.stringify(Object.keys(require.cache))))`])
  if (run.status !== 0) throw new Error(run.stderr)
  return JSON.parse(run.stdout) as string[]
}

const heavy = ['@grpc/grpc-js', '@peculiar/x509', 'better-sqlite3', 'ajv', 'yaml', 'prom-client', 'pino', '/dist/agent/agent.js', '/dist/proxy/sidecar.js', '/dist/demo/']

void t.test('cli startup – building the command tree loads none of the parts', { skip }, async t => {
  const loaded = await modulesLoadedBy(`require(${JSON.stringify(program)}).buildProgram()`)
  t.ok(loaded.some(path => path.endsWith(join('dist', 'cli', 'program.js'))), 'the probe sees the modules it loads')
  for (const part of heavy) t.notOk(loaded.some(path => path.includes(part.replaceAll('/', join('/')))), `${part} is not loaded`)
})

void t.test('cli startup – a command loads its part when it runs', { skip }, async t => {
  const loaded = await modulesLoadedBy(`require(${JSON.stringify(program)}).buildProgram().parseAsync(['node', 'chaperone', 'policy', 'check', '/nonexistent.yaml', '--from', 'spiffe://a.example/x', '--to', 'spiffe://a.example/y']).catch(() => {})`)
  t.ok(loaded.some(path => path.includes(join('dist', 'cli', 'policy-actions.js'))), 'policy check loaded its actions')
})

void t.test('cli startup – node mode loads no JWT code: a node proxy asks the Delegated Identity API for X509-SVIDs only', { skip }, async t => {
  // What `chaperone node run` loads (cli/node-command.ts).
  const parts = ['config.js', 'node-proxy.js', 'config-watch.js'].map(file => `require(${JSON.stringify(join(__dirname, '..', '..', 'dist', 'node', file))})`)
  const loaded = await modulesLoadedBy(parts.join(', '))
  t.ok(loaded.some(path => path.includes(join('dist', 'node', 'node-proxy.js'))), 'the probe sees node/')
  t.ok(loaded.some(path => path.includes(join('dist', 'spiffe', 'delegated-identity-client.js'))), 'and the Delegated Identity client')
  t.notOk(loaded.some(path => path.includes(join('node_modules', 'jose'))), 'jose is not loaded (0.9 MB of heap), nor the JWT-SVID modules that use it')
})
