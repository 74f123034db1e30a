/**
 * Devices on network namespaces, for node mode's benchmark. Each device is a namespace of its own (the device's host):
 * it holds its bridges, one /24 each, and every app namespace hangs on one of them by a veth pair, addressed
 * `<net>.10`, `.11` … with a default route through the bridge. Two devices are joined by a veth pair between their
 * namespaces (the wire, 198.19.255.0/30) and route each other's app networks over it, so traffic between devices is
 * routed, as between two machines on a LAN. Nothing is added to the root namespace but the namespaces' names: the
 * bridges, the wire and every address live inside the device namespaces, so no address can clash with the host's
 * or with another test's. Everything is named after the run (`chbench<pid>`); a run whose process is gone is removed
 * by the next one, and this one is removed when the process exits or is interrupted.
 */
import { execFile, execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { promisify } from 'node:util'

const run = promisify(execFile)
const RUN_PREFIX = 'chbench'
const WIRE = { name: 'wire', net: '198.19.255', first: 1 } as const

export interface BridgeSpec {
  /** The bridge's interface name in its device (at most 12 characters). */
  readonly name: string
  /** The first three octets of its /24, e.g. `198.18.10`; the bridge is `.1`. */
  readonly net: string
  readonly apps: readonly string[]
}

export interface DeviceSpec { readonly name: string, readonly bridges: readonly BridgeSpec[] }

export interface AppHost {
  readonly ns: string
  readonly address: string
  readonly device: string
}

export interface Devices {
  readonly run: string
  /** Each device's namespace, by device name. */
  readonly deviceNs: Readonly<Record<string, string>>
  readonly apps: Readonly<Record<string, AppHost>>
  /** Runs commands inside a namespace, as `uid` when given: a launcher for runWrk, runPaced and Processes.start. */
  launcher: (ns: string, uid?: number) => string[]
  /** Ends every process inside the namespaces and deletes them; idempotent. */
  destroy: () => void
}

async function ip (...args: string[]): Promise<void> {
  try {
    await run('ip', args)
  } catch (err) {
    throw new Error(`ip ${args.join(' ')} failed: ${String((err as { stderr?: string }).stderr ?? err).trim()}`)
  }
}

/** The app names of a device spec with their addresses on their bridges. */
export function addressesOf (device: DeviceSpec): Array<{ app: string, bridge: BridgeSpec, address: string, veth: string }> {
  return device.bridges.flatMap((bridge, b) => bridge.apps.map((app, i) => ({ app, bridge, address: `${bridge.net}.${10 + i}`, veth: `v${b}-${i}` })))
}

/** Kills what runs inside `namespaces` and deletes them, synchronously and without throwing (also at exit). */
function sweep (namespaces: readonly string[]): void {
  const quiet = (args: string[]): string => {
    try { return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }) } catch { return '' }
  }
  for (const ns of namespaces) {
    for (const pid of quiet(['netns', 'pids', ns]).split(/\s+/).filter(Boolean)) {
      try { process.kill(Number(pid), 'SIGKILL') } catch { /* gone already */ }
    }
  }
  for (const ns of namespaces) quiet(['netns', 'delete', ns])
}

/** Namespaces of earlier runs whose process is gone (a benchmark killed before its cleanup). */
export function staleNamespaces (names: readonly string[], alive: (pid: number) => boolean): string[] {
  return names.filter(name => {
    const pid = new RegExp(`^${RUN_PREFIX}(\\d+)-`).exec(name)?.[1]
    return pid !== undefined && !alive(Number(pid))
  })
}

function listNamespaces (): string[] {
  try {
    const out = execFileSync('ip', ['-j', 'netns', 'list'], { encoding: 'utf8' }).trim()
    return out === '' ? [] : (JSON.parse(out) as Array<{ name: string }>).map(ns => ns.name)
  } catch {
    return []
  }
}

async function addDevice (ns: string, device: DeviceSpec): Promise<void> {
  await ip('netns', 'add', ns)
  await ip('-n', ns, 'link', 'set', 'dev', 'lo', 'up')
  await run('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1'])
  for (const bridge of device.bridges) {
    await ip('-n', ns, 'link', 'add', 'name', bridge.name, 'type', 'bridge')
    await ip('-n', ns, 'addr', 'add', `${bridge.net}.1/24`, 'dev', bridge.name)
    await ip('-n', ns, 'link', 'set', 'dev', bridge.name, 'up')
  }
}

async function addApp (deviceNs: string, appNs: string, host: ReturnType<typeof addressesOf>[number]): Promise<void> {
  await ip('netns', 'add', appNs)
  await ip('-n', deviceNs, 'link', 'add', 'name', host.veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', appNs)
  await ip('-n', deviceNs, 'link', 'set', 'dev', host.veth, 'master', host.bridge.name, 'up')
  await ip('-n', appNs, 'link', 'set', 'dev', 'lo', 'up')
  await ip('-n', appNs, 'addr', 'add', `${host.address}/24`, 'dev', 'eth0')
  await ip('-n', appNs, 'link', 'set', 'dev', 'eth0', 'up')
  await ip('-n', appNs, 'route', 'add', 'default', 'via', `${host.bridge.net}.1`)
}

/** The wire between two devices, and each one's routes to the other's app networks. */
async function addWire (pair: ReadonlyArray<{ ns: string, device: DeviceSpec }>): Promise<void> {
  const [a, b] = pair
  await ip('-n', a.ns, 'link', 'add', 'name', WIRE.name, 'type', 'veth', 'peer', 'name', WIRE.name, 'netns', b.ns)
  for (const [i, end] of pair.entries()) {
    await ip('-n', end.ns, 'addr', 'add', `${WIRE.net}.${WIRE.first + i}/30`, 'dev', WIRE.name)
    await ip('-n', end.ns, 'link', 'set', 'dev', WIRE.name, 'up')
    const other = pair[1 - i]
    for (const bridge of other.device.bridges) await ip('-n', end.ns, 'route', 'add', `${bridge.net}.0/24`, 'via', `${WIRE.net}.${WIRE.first + 1 - i}`)
  }
}

/** Creates the devices (one or two) and their apps; on any failure removes what it made and rethrows. */
export async function createDevices (devices: readonly DeviceSpec[]): Promise<Devices> {
  if (devices.length < 1 || devices.length > 2) throw new Error('one or two devices')
  sweep(staleNamespaces(listNamespaces(), pid => existsSync(`/proc/${pid}`)))
  const runName = `${RUN_PREFIX}${process.pid}`
  const deviceNs = Object.fromEntries(devices.map(device => [device.name, `${runName}-${device.name}`]))
  const apps: Record<string, AppHost> = {}
  for (const device of devices) {
    for (const { app, address } of addressesOf(device)) apps[app] = { ns: `${runName}-${app}`, address, device: device.name }
  }
  const namespaces = [...Object.values(apps).map(app => app.ns), ...Object.values(deviceNs)]
  const destroy = (): void => {
    process.removeListener('exit', destroy)
    sweep(namespaces)
  }
  process.once('exit', destroy)
  try {
    for (const device of devices) {
      await addDevice(deviceNs[device.name], device)
      // A few at a time: fifty apps take seconds one by one.
      const hosts = addressesOf(device)
      for (let i = 0; i < hosts.length; i += 8) {
        await Promise.all(hosts.slice(i, i + 8).map(async host => { await addApp(deviceNs[device.name], apps[host.app].ns, host) }))
      }
    }
    if (devices.length === 2) await addWire(devices.map(device => ({ ns: deviceNs[device.name], device })))
  } catch (err) {
    destroy()
    throw err
  }
  const launcher = (ns: string, uid?: number): string[] =>
    ['ip', 'netns', 'exec', ns, ...(uid === undefined ? [] : ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--'])]
  return { run: runName, deviceNs, apps, launcher, destroy }
}
