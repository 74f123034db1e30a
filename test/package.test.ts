import t from 'tap'
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

// The package as users get it: the built main entry and the `chaperone` bin (npm test builds before tap runs).
const root = join(__dirname, '..')
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { main: string, version: string, bin: Record<string, string> }
const built = existsSync(join(root, pkg.main))

void t.test('package – the built main entry gives the library surface', { skip: built ? false : 'not built: run `npm run build` (npm test does)' }, async t => {
  // require() as a platform service would; this also loads the ESM-only jose from CommonJS.
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loading the package the CommonJS way is what is tested
  const lib = require(root) as Record<string, unknown> & { parseSpiffeId: (text: string) => { trustDomain: { name: string }, path: string } }
  for (const name of ['parseSpiffeId', 'parseTrustDomain', 'X509Bundle', 'JwtBundle', 'SpiffeBundle', 'BundleSet', 'verifyX509Svid',
    'spiffeCheckServerIdentity', 'verifyTlsPeer', 'validateJwtSvid', 'ChaperoneError', 'loadPolicy', 'compilePolicy', 'PolicyWatcher']) {
    t.type(lib[name], 'function', `exports ${name}`)
  }
  const id = lib.parseSpiffeId('spiffe://plant.example/frontend')
  t.equal(id.trustDomain.name, 'plant.example')
  t.equal(id.path, '/frontend')
  t.throws(() => lib.parseSpiffeId('spiffe://Plant.example/x'), { code: 'ERR_SPIFFE_ID_INVALID' })
  // The policy engine, as a platform service gates a request by peer ID: decide works detached from its policy.
  const { compilePolicy } = lib as unknown as { compilePolicy: (doc: object) => { decide: (request: object) => { allow: boolean, rule: string } } }
  const { decide } = compilePolicy({ version: 1, rules: [{ name: 'fe-api', from: ['spiffe://plant.example/frontend'], to: ['spiffe://plant.example/api'], action: 'allow' }] })
  t.match(decide({ from: id, to: 'spiffe://plant.example/api' }), { allow: true, rule: 'fe-api' })
  t.match(decide({ from: 'spiffe://plant.example/other', to: 'spiffe://plant.example/api' }), { allow: false, rule: 'default' })
})

void t.test('package – the chaperone bin answers --version, runs the demo mesh, and rejects unknown commands', { skip: built ? false : 'not built' }, async t => {
  const bin = join(root, pkg.bin.chaperone)
  t.equal(execFileSync(process.execPath, [bin, '--version'], { encoding: 'utf8' }).trim(), pkg.version)
  // What `npm start` runs, stopping after the two calls instead of waiting for Ctrl-C.
  const demo = spawnSync(process.execPath, [bin, 'demo', '--once'], { encoding: 'utf8', timeout: 60_000 })
  t.equal(demo.status, 0, `the demo exits 0 ${demo.stderr}`)
  t.match(demo.stdout, /1\. app-a → app-b: GET \/hello — HTTP 200, an allowed call\n {3}sidecar-b allowed it by rule "app-a-reads-app-b"/)
  t.match(demo.stdout, 'app-b saw the caller as spiffe://plant.example/app-a (from X-Forwarded-Client-Cert')
  t.match(demo.stdout, /2\. app-c → app-b: GET \/hello — HTTP 403, a call the policy denies\n {3}the policy denies it: rule "default"/)
  t.match(demo.stdout, '"event":"denied","listener":"outbound-1","self":"spiffe://plant.example/app-c"')
  t.notMatch(demo.stdout, /Admin endpoints|Try: curl/, 'with --once, no addresses that are dead a moment later')
  const dir = /loopback \((\/[^)]+)\)/.exec(demo.stdout)?.[1] ?? ''
  t.ok(dir !== '' && !existsSync(dir), 'the temporary directory is removed')
  const unknown = spawnSync(process.execPath, [bin, 'frobnicate'], { encoding: 'utf8' })
  t.not(unknown.status, 0)
  t.match(unknown.stderr, /unknown command 'frobnicate'/)
})
