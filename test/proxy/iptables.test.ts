import t from 'tap'
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { CLI_BIN, CLI_SKIP, runProcess } from '../helpers/cli'
import { cleanup, install, installCommands, iptablesIn } from '../../proxy/listeners/iptables'

// `chaperone proxy init-iptables` in a real, throwaway network namespace (root only): the rules it installs,
// idempotence, the message without privileges, and cleanup. No rule touches the host's own namespace.

const root = process.getuid?.() === 0
const tools = spawnSync('iptables', ['--version']).status === 0 && spawnSync('ip', ['-V']).status === 0
const skip = CLI_SKIP !== false ? CLI_SKIP : !root ? 'needs root (network namespaces and iptables)' : !tools ? 'needs iptables and iproute2 (apt-get install -y iptables iproute2; CI installs them)' : false
const ns = `chp-ipt-${randomBytes(3).toString('hex')}`

t.before(() => { if (skip === false) spawnSync('ip', ['netns', 'add', ns]) })
t.teardown(() => { if (skip === false) spawnSync('ip', ['netns', 'del', ns]) })

const inNs = async (args: string[], asUid?: number): Promise<{ status: number | null, stdout: string, stderr: string }> =>
  await runProcess('ip', ['netns', 'exec', ns, ...(asUid === undefined ? [] : ['setpriv', `--reuid=${asUid}`, `--regid=${asUid}`, '--clear-groups']), ...args])
const natRules = async (): Promise<string[]> => (await inNs(['iptables-save', '-t', 'nat'])).stdout.split('\n').filter(line => line.startsWith('-A'))
const chaperone = (args: string[]): string[] => [process.execPath, CLI_BIN, 'proxy', 'init-iptables', ...args]

void t.test('init-iptables – redirects inbound and outbound TCP, exempting the proxy uid, loopback and excluded ports; idempotent', { skip }, async t => {
  const args = ['--proxy-uid', '1337', '--inbound-port', '15006', '--outbound-port', '15001', '--exclude-inbound-ports', '15000,22', '--exclude-outbound-ports', '53']
  for (let round = 1; round <= 2; round++) {
    const run = await inNs(chaperone(args))
    t.equal(run.status, 0, run.stderr)
    t.same(await natRules(), [
      '-A PREROUTING -p tcp -j CHAPERONE_INBOUND',
      '-A OUTPUT -p tcp -j CHAPERONE_OUTPUT',
      '-A CHAPERONE_INBOUND -p tcp -m tcp --dport 15000 -j RETURN',
      '-A CHAPERONE_INBOUND -p tcp -m tcp --dport 22 -j RETURN',
      '-A CHAPERONE_INBOUND -p tcp -j REDIRECT --to-ports 15006',
      '-A CHAPERONE_OUTPUT -m owner --uid-owner 1337 -j RETURN',
      '-A CHAPERONE_OUTPUT -o lo -j RETURN',
      '-A CHAPERONE_OUTPUT -d 127.0.0.0/8 -j RETURN',
      '-A CHAPERONE_OUTPUT -p tcp -m tcp --dport 53 -j RETURN',
      '-A CHAPERONE_OUTPUT -p tcp -j REDIRECT --to-ports 15001'
    ], `after run ${round}: the same rules, each jump once`)
  }
  const cleanup = await inNs(chaperone(['--proxy-uid', '1337', '--cleanup']))
  t.equal(cleanup.status, 0, cleanup.stderr)
  t.same(await natRules(), [], 'cleanup leaves the table as it was')
  t.equal((await inNs(chaperone(['--proxy-uid', '1337', '--cleanup']))).status, 0, 'cleanup twice is fine')
})

void t.test('init-iptables – without privileges it says what is needed; --dry-run prints the commands and changes nothing', { skip }, async t => {
  const denied = await inNs(chaperone(['--proxy-uid', '1337']), 65534)
  t.equal(denied.status, 1)
  t.match(denied.stderr, 'iptables needs root or the NET_ADMIN capability in this network namespace')
  const dry = await inNs(chaperone(['--proxy-uid', '1337', '--dry-run']))
  t.equal(dry.status, 0)
  t.equal(dry.stdout, `${installCommands({ exempt: { uid: 1337 }, inboundPort: 15006, outboundPort: 15001, excludeInboundPorts: [], excludeOutboundPorts: [] }).map(a => `iptables -t nat ${a.join(' ')}`).join('\n')}\n`)
  t.match(dry.stdout, 'iptables -t nat -A CHAPERONE_OUTPUT -m owner --uid-owner 1337 -j RETURN')
  t.same(await natRules(), [], 'nothing installed')
})

void t.test('node mode rules – installed from outside the namespace (nsenter): the mark is exempt, the tunnel port is served where it is', { skip }, async t => {
  const run = iptablesIn(`/var/run/netns/${ns}`)
  install({ exempt: { mark: 0x539 }, tunnelPort: 15008, inboundPort: 15006, outboundPort: 15001, excludeInboundPorts: [], excludeOutboundPorts: [] }, run)
  const rules = await natRules()
  t.ok(rules.includes('-A CHAPERONE_INBOUND -p tcp -m tcp --dport 15008 -j RETURN'), 'the tunnel port is not redirected')
  t.ok(rules.indexOf('-A CHAPERONE_INBOUND -p tcp -m tcp --dport 15008 -j RETURN') < rules.indexOf('-A CHAPERONE_INBOUND -p tcp -j REDIRECT --to-ports 15006'), 'before the redirect')
  t.ok(rules.includes('-A CHAPERONE_OUTPUT -m mark --mark 0x539 -j RETURN'), 'the node proxy\'s marked sockets leave as they are')
  t.notOk(rules.some(rule => rule.includes('--uid-owner')), 'no uid is exempt: an app may run as any uid')
  const host = spawnSync('iptables-save', ['-t', 'nat'], { encoding: 'utf8' }).stdout
  t.notMatch(host, /CHAPERONE_/, 'nothing in the namespace the rules were installed from')
  cleanup(run)
  t.same(await natRules(), [], 'cleanup removes it all')
})
