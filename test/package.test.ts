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

void t.test('package – the chaperone bin answers --version, runs the demo placeholder, and rejects unknown commands', { skip: built ? false : 'not built' }, async t => {
  const bin = join(root, pkg.bin.chaperone)
  t.equal(execFileSync(process.execPath, [bin, '--version'], { encoding: 'utf8' }).trim(), pkg.version)
  const demo = spawnSync(process.execPath, [bin, 'demo'], { encoding: 'utf8' })
  t.equal(demo.status, 0, 'the demo exits 0')
  t.match(demo.stdout, /demo mesh/)
  t.match(demo.stdout, /allowed call/)
  t.match(demo.stdout, /denies/)
  const unknown = spawnSync(process.execPath, [bin, 'frobnicate'], { encoding: 'utf8' })
  t.not(unknown.status, 0)
  t.match(unknown.stderr, /unknown command 'frobnicate'/)
})
