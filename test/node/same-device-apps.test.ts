import t from 'tap'
import pino from 'pino'
import type { SameDeviceApp } from '../../proxy'
import { SameDeviceApps } from '../../node/same-device-apps'
import type { AddressedApp } from '../../node/same-device-apps'

// Which served app is at an address, for node mode's same-device handoff: an address is an app's only while no
// other namespace claims it, apps not served are nobody, and a conflict is logged once, when it appears.

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
  const apps = new SameDeviceApps(true, logger)
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
  const apps = new SameDeviceApps(true, logger)
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
  const apps = new SameDeviceApps(true, logger)
  apps.update([app('a', new Error('cannot enter network namespace')), app('b', ['172.30.0.3'])])
  t.equal(apps.at('172.30.0.3')?.httpPorts.size, 0, 'the others are read')
  t.match(lines, [{ event: 'app_addresses_failed', app: 'a', err: /cannot enter/ }])
})

void t.test('same-device apps – sameDevice: tunnel hands nothing over', async t => {
  const { logger } = logged()
  const apps = new SameDeviceApps(false, logger)
  apps.update([app('a', ['172.30.0.2'])])
  t.equal(apps.at('172.30.0.2'), undefined)
})
