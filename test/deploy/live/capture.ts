/**
 * tcpdump on the deployment network's bridge, started before any app traffic and stopped after, and whether it
 * really ran all that time: libpcap ends a capture when its interface goes down, which a bridge does when its last
 * container leaves (`down`), so each `up` gets a capture of its own. Not a test itself.
 */
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { findTool } from '../../helpers/netns-tools'

export interface BridgeCapture {
  /** Stops tcpdump; the pcap bytes, what tcpdump said (its packet counts), and that again if it had stopped on its own before. */
  stop: () => Promise<{ pcap: Buffer, log: string, stoppedEarly?: string }>
}

/** Starts tcpdump on `bridge`, writing every packet to `file` as it comes; resolves once it listens. */
export async function captureBridge (bridge: string, file: string): Promise<BridgeCapture> {
  // --immediate-mode: each packet reaches tcpdump as it comes. Otherwise libpcap (TPACKET_V3) hands them over in
  // blocks, and the last, partly filled block of a quiet capture may still be in the kernel when tcpdump is stopped:
  // a capture of the few packets of one `up` could then come back empty. -U then writes each packet at once.
  const child = spawn(findTool('tcpdump') ?? 'tcpdump', ['-i', bridge, '--immediate-mode', '-w', file, '-U', '-n', '-Z', 'root'], { stdio: ['ignore', 'ignore', 'pipe'] })
  let log = ''
  child.stderr.setEncoding('utf8').on('data', (s: string) => { log += s })
  const exited = new Promise(resolve => child.once('exit', resolve))
  await new Promise<void>((resolve, reject) => {
    const listening = (): void => { if (log.includes('listening on')) resolve() }
    child.stderr.on('data', listening)
    void exited.then(() => { reject(new Error(`tcpdump on ${bridge} exited: ${log.trim()}`)) })
  })
  let stopped: Promise<{ pcap: Buffer, log: string, stoppedEarly?: string }> | undefined
  return {
    stop: async () => await (stopped ??= (async () => {
      const early = child.exitCode !== null || child.signalCode !== null
      if (!early) {
        child.kill('SIGINT')
        await exited
      }
      return { pcap: readFileSync(file), log: log.trim(), ...early ? { stoppedEarly: log.trim() } : {} }
    })())
  }
}
