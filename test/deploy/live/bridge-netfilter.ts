/**
 * Node mode's guard filters bridged traffic, which passes iptables only with br_netfilter loaded and
 * net.bridge.bridge-nf-call-iptables on (a dockerd started with --iptables=false, as ours is, sets neither). The
 * live tests of node mode turn it on, and back off afterwards if it was off. Not a test itself.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { run } from '../../helpers/command'

const SETTING = '/proc/sys/net/bridge/bridge-nf-call-iptables'

/** Turns bridge netfilter on; resolves to what puts it back as it was. */
export async function bridgeNetfilterOn (): Promise<() => void> {
  if (!existsSync(SETTING)) await run('modprobe', ['br_netfilter'])
  if (!existsSync(SETTING)) throw new Error(`no ${SETTING}: the kernel has no br_netfilter, which node mode's guard needs`)
  const before = readFileSync(SETTING, 'utf8').trim()
  if (before !== '1') writeFileSync(SETTING, '1')
  return () => { if (before !== '1') writeFileSync(SETTING, before) }
}
