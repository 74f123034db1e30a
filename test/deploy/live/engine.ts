/**
 * The Docker engine the deployment test runs on (composes.ts picks the Compose). As root it installs what is missing from Debian's
 * packages (docker.io, docker-compose, tcpdump, debootstrap, iptables), and when no engine answers on
 * /var/run/docker.sock (the path docker-compose.yml mounts into the agent) it starts its own dockerd: overlay2
 * storage where the kernel and file system allow it, else vfs, which works anywhere (a full copy per layer: a cold
 * build took 10 minutes with it, 4 with overlay2); and no iptables rules, masquerading or default bridge, so the
 * host's firewall is left as it was. It stops that dockerd at the end; its images stay in the cache folder.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, openSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { findTool } from '../../helpers/netns-tools'
import { must, run, waitFor } from '../../helpers/command'

export const DOCKER_SOCKET = '/var/run/docker.sock'

/** Where built peers, the base image's root file system and a dockerd of our own keep their state between runs. */
export const CACHE_DIR = process.env.CHAPERONE_DEPLOY_CACHE ?? join(homedir(), '.cache', 'chaperone-deploy')

/** Debian package → the command that shows it is installed. */
const PACKAGES: Record<string, string> = {
  'docker.io': 'dockerd',
  'docker-compose': 'docker-compose',
  tcpdump: 'tcpdump',
  debootstrap: 'debootstrap',
  iptables: 'iptables'
}

/** Installs the missing packages with apt-get; returns their names. */
export async function installMissing (): Promise<string[]> {
  const missing: string[] = []
  for (const [pkg, command] of Object.entries(PACKAGES)) if (findTool(command) === undefined) missing.push(pkg)
  if (missing.length > 0) {
    await must('apt-get', ['update', '-qq'], { timeoutMs: 300_000 })
    await must('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing],
      { env: { DEBIAN_FRONTEND: 'noninteractive' }, timeoutMs: 600_000 })
  }
  return missing
}

export interface Engine {
  /** True when this test started dockerd (and will stop it). */
  readonly ours: boolean
  stop: () => Promise<void>
}

async function answers (): Promise<boolean> {
  return (await run('docker', ['version', '--format', '{{.Server.Version}}'], { timeoutMs: 10_000 })).status === 0
}

/** Starts dockerd with `driver` and its state in the cache folder; resolves once it answers, rejects if it exits. */
async function startDockerd (driver: string): Promise<ChildProcess> {
  const root = join(CACHE_DIR, `docker-${driver}`)
  mkdirSync(root, { recursive: true })
  const logFile = join(CACHE_DIR, `dockerd-${driver}.log`)
  const log = openSync(logFile, 'w')
  const dockerd = spawn(findTool('dockerd') ?? 'dockerd', [
    '--storage-driver', driver, '--iptables=false', '--ip-masq=false', '--bridge=none',
    '--data-root', root, '--exec-root', '/run/chaperone-deploy-test/docker', '--pidfile', '/run/chaperone-deploy-test/dockerd.pid',
    '-H', `unix://${DOCKER_SOCKET}`
  ], { stdio: ['ignore', log, log] })
  const exited = new Promise<never>((_resolve, reject) => {
    dockerd.once('exit', code => { reject(new Error(`dockerd --storage-driver ${driver} exited (${code}) at start: see ${logFile}`)) })
  })
  await Promise.race([exited, waitFor('dockerd to answer', 60_000, async () => await answers() ? true : undefined)])
  dockerd.removeAllListeners('exit')
  return dockerd
}

/** dockerd with overlay2, or with vfs where overlay2 cannot run. */
async function startOwnDockerd (): Promise<ChildProcess> {
  return await startDockerd('overlay2').catch(async () => await startDockerd('vfs'))
}

async function stopDockerd (dockerd: ChildProcess): Promise<void> {
  if (dockerd.exitCode !== null || dockerd.signalCode !== null) return
  const gone = new Promise(resolve => dockerd.once('exit', resolve))
  dockerd.kill('SIGTERM')
  const timer = setTimeout(() => dockerd.kill('SIGKILL'), 60_000)
  await gone
  clearTimeout(timer)
}

/** The engine to run on: the one already answering, or one started here. */
export async function startEngine (): Promise<Engine> {
  const dockerd = await answers() ? undefined : await startOwnDockerd()
  return { ours: dockerd !== undefined, stop: async () => { if (dockerd !== undefined) await stopDockerd(dockerd) } }
}
