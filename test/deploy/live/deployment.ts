/**
 * One compose deployment under test, for compose-up.ts (the sidecar deployment) and node-mode.ts (node mode): its
 * Compose commands, captures on the network's bridge started before an `up`, what the sample apps logged and
 * answered, and the proof that every stream between the apps was TLS. On teardown it stops the captures, prints the
 * services' logs if a check failed, and runs `down -v`. Not a test itself.
 */
import type { Test } from 'tap'
import { join } from 'node:path'
import { captureBridge } from './capture'
import type { BridgeCapture } from './capture'
import { must, run, waitFor } from '../../helpers/command'
import type { CommandResult } from '../../helpers/command'
import type { Compose } from './composes'
import { notTls, tcpStreams } from './pcap'

export const NETWORK = 'proxy-redirect'
export const APP_A = 'spiffe://plant.example/app-a'
export const APP_B = 'spiffe://plant.example/app-b'
export const HELLO = 'hello from app-b'
/** The path the container with no proxy asks app-b for in plain text. */
export const ROGUE_PATH = '/rogue-plaintext-probe'

export const seconds = (since: number): string => `${((Date.now() - since) / 1000).toFixed(1)} s`

export interface Deployment {
  /** The temporary folder with the copied compose files and deploy/. */
  readonly dir: string
  compose: (...args: string[]) => Promise<CommandResult>
  composeMust: (...args: string[]) => Promise<string>
  /** Starts tcpdump on the bridge into `<name>-<compose>.pcap`; stopped at teardown if not before. */
  capture: (name: string) => Promise<BridgeCapture>
}

/** The deployment of `file` (in `dir`) as Compose project `project`, from no container; cleaned up at teardown. */
export async function openDeployment (t: Test, compose: Compose, options: { project: string, file: string, dir: string, bridge: string }): Promise<Deployment> {
  const { project, file, dir, bridge } = options
  const args = (rest: string[]): string[] => [...compose.command.slice(1), '-p', project, '-f', join(dir, file), ...rest]
  const captures: BridgeCapture[] = []
  const d: Deployment = {
    dir,
    compose: async (...rest) => await run(compose.command[0], args(rest), { cwd: dir, timeoutMs: 600_000 }),
    composeMust: async (...rest) => await must(compose.command[0], args(rest), { cwd: dir, timeoutMs: 600_000 }),
    capture: async name => {
      const started = await captureBridge(bridge, join(dir, `${name}-${compose.version.replace(/\W+/g, '-')}.pcap`))
      captures.push(started)
      return started
    }
  }
  // A run stopped half-way leaves its containers; start from none.
  await d.compose('down', '-v', '--remove-orphans')
  t.teardown(async () => {
    for (const started of captures) await started.stop()
    // What went wrong is in the services' logs: show them before they go.
    if (!t.passing()) process.stderr.write(`${compose.command.join(' ')} logs:\n${(await d.compose('logs', '--no-color', '--tail', '60')).stdout}\n`)
    await d.compose('down', '-v', '--remove-orphans')
  })
  return d
}

/** The lines a service logged, without Compose's `name | ` prefix. */
export async function logs (d: Deployment, service: string): Promise<string[]> {
  return (await d.composeMust('logs', '--no-color', service)).split('\n').map(line => line.replace(/^[^|]*\| ?/, ''))
}

/** The requests app-b (the http-echo stand-in) logged, newest last. */
export interface LoggedRequest { method: string, path: string, headers: Record<string, string[] | undefined> }
export async function requestsAtAppB (d: Deployment): Promise<LoggedRequest[]> {
  return (await logs(d, 'app-b')).filter(line => line.startsWith('{"event":"request"')).map(line => JSON.parse(line) as LoggedRequest)
}

/** curl in app-a's container: the HTTP status, or curl's own failure. */
export async function callFromAppA (d: Deployment, ...curlArgs: string[]): Promise<string> {
  const result = await d.compose('exec', '-T', 'app-a', 'curl', '-sS', '-m', '10', '-o', '/dev/null', '-w', '%{http_code}', ...curlArgs, 'http://app-b:8080/')
  return result.status === 0 ? result.stdout.trim() : `curl failed: ${result.stderr.trim()}`
}

/** Plain HTTP to app-b from `container`, which has no proxy: fails, or the check does. */
export async function rogueCallFails (t: Test, container: string): Promise<void> {
  const rogue = await run('docker', ['exec', container, 'curl', '-sS', '-m', '5', `http://app-b:8080${ROGUE_PATH}`], { timeoutMs: 60_000 })
  t.not(rogue.status, 0, `plain HTTP from a container with no proxy fails: ${rogue.stderr.trim()}`)
}

export async function waitForHello (d: Deployment, after: number): Promise<void> {
  await waitFor(`app-a to log "${HELLO}"`, 180_000, async () =>
    (await logs(d, 'app-a')).filter(line => line.includes(HELLO)).length > after ? true : undefined)
}

/** `up -d`, then waits for app-a's first answer from app-b, and says how long it took (`what`: which up). */
export async function upUntilHello (t: Test, d: Deployment, what: string): Promise<void> {
  const upAt = Date.now()
  await d.composeMust('up', '-d')
  await waitForHello(d, 0)
  t.comment(`${what} → app-a's first answer from app-b in ${seconds(upAt)}`)
}

/** app-b logged app-a's requests, each with one X-Forwarded-Client-Cert naming app-a, and answers a GET. */
export async function expectAppBToldAppA (t: Test, d: Deployment): Promise<void> {
  const seen = await requestsAtAppB(d)
  t.ok(seen.length > 0, 'app-b logged app-a\'s requests')
  const xfcc = seen.map(r => r.headers['X-Forwarded-Client-Cert'])
  t.ok(xfcc.every(values => values?.length === 1), 'every request came with exactly one X-Forwarded-Client-Cert')
  t.match(xfcc[0]?.[0], new RegExp(`^By=${APP_B};Hash=[0-9a-f]{64};URI=${APP_A}$`), 'set by app-b\'s proxy, naming app-a')
  t.equal(await callFromAppA(d), '200', 'a GET from app-a is answered')
}

/**
 * What proves the capture saw the bridge: app-a's calls, crossing it to port `calls`; or, where they never cross it
 * (node mode hands them to app-b inside the node proxy), attempts at port `attempts` that the guard dropped.
 */
export type CaptureSeen = { readonly calls: number } | { readonly attempts: number }

/** The capture saw the bridge (`seen`), and every stream in it is TLS records from its first byte. */
export async function expectOnlyTls (t: Test, capture: BridgeCapture, seen: CaptureSeen): Promise<void> {
  const { pcap, log, stoppedEarly } = await capture.stop()
  t.equal(stoppedEarly, undefined, 'tcpdump captured from before `up` until now')
  const all = tcpStreams(pcap)
  const streams = all.filter(s => s.bytes.length > 0)
  const listed = all.map(s => `${s.key} (${s.bytes.length} bytes)`).join(', ') || `none (tcpdump: ${log.replace(/\s+/g, ' ')})`
  if ('calls' in seen) t.ok(streams.some(s => s.dstPort === seen.calls && !s.bytes.includes(ROGUE_PATH)), `the capture saw app-a's connections to app-b: ${listed}`)
  else t.ok(all.some(s => s.dstPort === seen.attempts), `the capture saw connections attempted between the apps at port ${seen.attempts}: ${listed}`)
  for (const stream of streams) {
    if (stream.bytes.includes(ROGUE_PATH)) continue // the container with no proxy sent plain text itself
    const problem = notTls(stream.bytes)
    if (problem !== undefined) t.fail(`${stream.key}: ${problem}`)
  }
  t.pass(`every other stream (${streams.length}) is TLS records from its first byte`)
  t.notOk(pcap.includes(HELLO), `"${HELLO}" never crosses the network in plain text`)
}

/** `down -v` leaves no container and no volume of the project. */
export async function expectDownLeavesNothing (t: Test, d: Deployment, project: string): Promise<void> {
  await d.composeMust('down', '-v', '--remove-orphans')
  const label = `label=com.docker.compose.project=${project}`
  t.equal((await must('docker', ['ps', '-aq', '--filter', label])).trim(), '', 'no container of the deployment')
  t.equal((await must('docker', ['volume', 'ls', '-q', '--filter', label])).trim(), '', 'no volume of the deployment')
}
