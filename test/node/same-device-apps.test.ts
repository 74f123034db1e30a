import t from 'tap'
import pino from 'pino'
import type { SameDeviceApp } from '../../proxy'
import { networkOf, parseIpv4Network } from '../../node/ipv4-network'
import type { Ipv4Network } from '../../node/ipv4-network'
import { SameDeviceApps } from '../../node/same-device-apps'
import type { AddressedApp } from '../../node/same-device-apps'

// Which served app is at an address, for node mode's same-device handoff: an address is an app's only while no
// other namespace claims it and it is on a network attached to the device, apps not served are nobody, and a
// conflict is logged once, when it appears.

/** The device's networks in these tests: its app bridge and another attached network. */
const DEVICE = [parseIpv4Network('172.30.0.0/16'), parseIpv4Network('10.9.0.0/24')] as Ipv4Network[]
const onDevice = (): Ipv4Network[] => DEVICE

function logged (): { logger: pino.Logger, lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const logger = pino({ level: 'info' }, { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>) } })
  return { logger, lines }
}

function app (name: string, addresses: string[] | Error, served = true): AddressedApp & { proxy: SameDeviceApp } {
  const proxy = { id: undefined, httpPorts: new Set<number>(), serve: () => {} } satisfies SameDeviceApp
  return {
    name,
    proxy,
    served: served ? proxy : undefined,
    inNamespace: <T>(): T => {
      if (addresses instanceof Error) throw addresses
      return addresses as T
    }
  }
}

void t.test('same-device apps – each address names the one app that holds it', async t => {
  const { logger, lines } = logged()
  const apps = new SameDeviceApps(true, logger, onDevice)
  const a = app('a', ['172.30.0.2', '10.9.0.2'])
  const b = app('b', ['172.30.0.3'])
  apps.update([a, b, app('gone', ['172.30.0.4'], false)])
  t.equal(apps.at('172.30.0.2'), a.proxy)
  t.equal(apps.at('10.9.0.2'), a.proxy, 'every address of the namespace')
  t.equal(apps.at('172.30.0.3'), b.proxy)
  t.equal(apps.at('172.30.0.4'), undefined, 'an app not served is nobody')
  t.equal(apps.at('172.30.0.9'), undefined, 'an address no app holds')
  t.same(lines, [], 'nothing to log')

  apps.update([a])
  t.equal(apps.at('172.30.0.3'), undefined, 'an app no longer given is forgotten at the next update')
})

void t.test('same-device apps – an address two namespaces claim is nobody\'s, logged once per change', async t => {
  const { logger, lines } = logged()
  const apps = new SameDeviceApps(true, logger, onDevice)
  const a = app('a', ['172.30.0.2'])
  const impostor = app('impostor', ['172.30.0.2', '172.30.0.7'])
  apps.update([a, impostor])
  t.equal(apps.at('172.30.0.2'), undefined, 'neither gets the calls to it: they go through the tunnel')
  t.equal(apps.at('172.30.0.7'), impostor.proxy, 'an address only one holds is still that one\'s')
  apps.update([a, impostor])
  t.match(lines, [{ event: 'address_conflict', conflicts: ['172.30.0.2: a, impostor'] }], 'logged when it appears, not at every update')
  t.equal(lines.length, 1)
  apps.update([a])
  t.equal(apps.at('172.30.0.2'), a.proxy, 'resolved once the claim goes')
})

void t.test('same-device apps – an app whose addresses cannot be read is nobody, and logged', async t => {
  const { logger, lines } = logged()
  const apps = new SameDeviceApps(true, logger, onDevice)
  apps.update([app('a', new Error('cannot enter network namespace')), app('b', ['172.30.0.3'])])
  t.equal(apps.at('172.30.0.3')?.httpPorts.size, 0, 'the others are read')
  t.match(lines, [{ event: 'app_addresses_failed', app: 'a', err: /cannot enter/ }])
})

void t.test('same-device apps – sameDevice: tunnel hands nothing over', async t => {
  const { logger } = logged()
  const apps = new SameDeviceApps(false, logger, onDevice)
  apps.update([app('a', ['172.30.0.2'])])
  t.equal(apps.at('172.30.0.2'), undefined)
})

void t.test('same-device apps – an address off the device\'s networks is nobody\'s, whoever claims it', async t => {
  const { logger } = logged()
  const apps = new SameDeviceApps(true, logger, onDevice)
  // An app with NET_ADMIN in its namespace gives itself the address of an app on another device.
  const impostor = app('impostor', ['172.30.0.9', '172.31.0.5'])
  apps.update([impostor])
  t.equal(apps.at('172.30.0.9'), impostor.proxy, 'its own address is its own')
  t.equal(apps.at('172.31.0.5'), undefined, 'the other device\'s address is not: calls to it go out, where the network routes them')
})

void t.test('networkOf – an interface\'s address and netmask name the network it is on', async t => {
  t.same(networkOf('172.30.0.1', '255.255.0.0'), parseIpv4Network('172.30.0.0/16'))
  t.same(networkOf('10.9.0.77', '255.255.255.0'), parseIpv4Network('10.9.0.0/24'))
  t.same(networkOf('192.168.1.1', '255.255.255.255'), parseIpv4Network('192.168.1.1/32'))
})
