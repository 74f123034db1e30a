/**
 * Node mode's benchmark topology: which app sits on which device and bridge, and as which uid.
 *
 *   device d1 (a namespace)                                 device d2 (a namespace)
 *     bridge appbr 198.18.10.0/24 (guarded) ── node proxy     bridge appbr 198.18.20.0/24 (guarded) ── node proxy
 *       n-client · n-server · n-idle-2 … (the ladder's)          n-server2
 *     bridge sidebr 198.18.11.0/24                            bridge sidebr 198.18.21.0/24
 *       s-client · s-server   (a sidecar in each)                s-server2 (a sidecar)
 *     wire 198.19.255.1/30 ──────────── routed ────────────── wire 198.19.255.2/30
 *
 * Node-mode apps and sidecar apps sit on separate bridges of the same device: the network guard admits only the
 * tunnel port between the apps of its bridge, and sidecars talk to each other on the apps' own ports.
 */
import type { DeviceSpec } from './devices'
import type { Entry } from './stand'
import { appId } from './stand'

export const DEVICE_ONE = 'd1'
export const DEVICE_TWO = 'd2'
/** The bridge of node-mode apps on each device (guarded), and of sidecar apps. */
export const NODE_BRIDGE = 'appbr'
const SIDECAR_BRIDGE = 'sidebr'

/** The apps every benchmark path uses; the ladder adds idle node-mode apps on d1. */
export const APPS = {
  nodeClient: 'n-client', nodeServer: 'n-server', nodeServerTwo: 'n-server2',
  sidecarClient: 's-client', sidecarServer: 's-server', sidecarServerTwo: 's-server2'
} as const

const FIRST_APP_UID = 5100
const FIRST_SIDECAR_UID = 5300

export interface Layout {
  readonly devices: readonly DeviceSpec[]
  /** The node-mode apps of d1 in the ladder's order: the first N are the ladder's N apps. */
  readonly ladderApps: readonly string[]
  /** The app networks of node-mode apps (CIDR), on both devices. */
  readonly appNetworks: readonly string[]
  /** The uid each app runs as; node-mode apps' identities are theirs. */
  readonly appUid: ReadonlyMap<string, number>
  /** The uid each sidecar runs as, by its app; sidecars' identities are theirs. */
  readonly sidecarUid: ReadonlyMap<string, number>
  /** Every registration entry (the node proxy's own is added by startAgent). */
  readonly entries: readonly Entry[]
}

/** The layout with `ladderSize` node-mode apps on d1 (at least the client and the server). */
export function layoutOf (ladderSize: number): Layout {
  const idle = Array.from({ length: Math.max(0, ladderSize - 2) }, (_, i) => `n-idle-${i + 2}`)
  const ladderApps = [APPS.nodeClient, APPS.nodeServer, ...idle]
  const devices: DeviceSpec[] = [
    { name: DEVICE_ONE, bridges: [{ name: NODE_BRIDGE, net: '198.18.10', apps: ladderApps }, { name: SIDECAR_BRIDGE, net: '198.18.11', apps: [APPS.sidecarClient, APPS.sidecarServer] }] },
    { name: DEVICE_TWO, bridges: [{ name: NODE_BRIDGE, net: '198.18.20', apps: [APPS.nodeServerTwo] }, { name: SIDECAR_BRIDGE, net: '198.18.21', apps: [APPS.sidecarServerTwo] }] }
  ]
  const all = devices.flatMap(device => device.bridges.flatMap(bridge => bridge.apps))
  const appUid = new Map(all.map((app, i) => [app, FIRST_APP_UID + i]))
  const sidecars: readonly string[] = [APPS.sidecarClient, APPS.sidecarServer, APPS.sidecarServerTwo]
  const sidecarUid = new Map(sidecars.map((app, i) => [app, FIRST_SIDECAR_UID + i]))
  const nodeApps = all.filter(app => !sidecarUid.has(app))
  const entries = [
    ...nodeApps.map(app => ({ id: appId(app), uid: appUid.get(app) as number })),
    ...sidecars.map(app => ({ id: appId(app), uid: sidecarUid.get(app) as number }))
  ]
  const appNetworks = devices.flatMap(device => device.bridges.filter(bridge => bridge.name === NODE_BRIDGE).map(bridge => `${bridge.net}.0/24`))
  return { devices, ladderApps, appNetworks, appUid, sidecarUid, entries }
}
