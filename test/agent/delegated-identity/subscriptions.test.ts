import t from 'tap'
import type { Test } from 'tap'
import { EventEmitter } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import pino from 'pino'
import { status } from '@grpc/grpc-js'
import type { ServerWritableStream } from '@grpc/grpc-js'
import { AgentCa } from '../../../agent/ca'
import { RegistrationStore } from '../../../agent/store'
import { pinProcess } from '../../../agent/attestation'
import { X509SvidCache } from '../../../agent/workload/svid-cache'
import { DelegatedSubscriptions } from '../../../agent/delegated-identity/subscriptions'
import type { Delegate } from '../../../agent/delegated-identity/delegate-authorization'
import { parseTrustDomain } from '../../../spiffe/id'
import { until } from './fixtures/delegated-stand'

// The subscriptions with a real CA and store and stand-in calls: the per-uid limit, and the periodic check that ends
// a PID subscription once its process is gone (even when nothing else would update it).

const td = parseTrustDomain('plant.example')
const logger = pino({ level: 'silent' })

class RecordingCall extends EventEmitter {
  readonly written: unknown[] = []
  ended?: { code: number, details: string }
  cancelled = false
  constructor () {
    super()
    this.on('error', (err: { code: number, details: string }) => { this.ended = { code: err.code, details: err.details } })
  }

  write (message: unknown): boolean {
    this.written.push(message)
    return true
  }

  end (): void {}
}

async function subscriptionsStand (t: Test, options: { maxStreamsPerUid?: number, processCheckMs?: number }): Promise<DelegatedSubscriptions> {
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-delegated-subs-'))
  const ca = await AgentCa.open({ trustDomain: td, dataDir: join(dir, 'data'), logger })
  const store = RegistrationStore.open({ dataDir: join(dir, 'data'), trustDomain: td, logger })
  const cache = new X509SvidCache(ca, logger)
  // Every caller is a delegate here: these tests are about the streams, not the authorization.
  const subscriptions = new DelegatedSubscriptions({ store, ca, cache, logger, authorization: { check: caller => ({ caller, spiffeId: 'spiffe://plant.example/node-proxy' }) }, ...options })
  t.teardown(() => { subscriptions.close(); cache.close(); ca.close(); store.close(); rmSync(dir, { recursive: true, force: true }) })
  return subscriptions
}

const delegate = (uid: number): Delegate => ({ caller: { uid, pid: process.pid, selectors: [] }, spiffeId: 'spiffe://plant.example/node-proxy' })
const asStream = (call: RecordingCall): ServerWritableStream<unknown, unknown> => call as unknown as ServerWritableStream<unknown, unknown>

void t.test('delegated subscriptions – one uid holds at most maxStreamsPerUid streams; a closed one frees its place', async t => {
  const subscriptions = await subscriptionsStand(t, { maxStreamsPerUid: 2 })
  const calls = [new RecordingCall(), new RecordingCall(), new RecordingCall(), new RecordingCall()]
  subscriptions.open('x509-bundles', delegate(7), undefined, asStream(calls[0]))
  subscriptions.open('jwt-bundles', delegate(7), undefined, asStream(calls[1]))
  subscriptions.open('x509-bundles', delegate(7), undefined, asStream(calls[2]))
  t.match(calls[2].ended, { code: status.RESOURCE_EXHAUSTED, details: /uid 7 has 2 delegated identity streams open/ }, 'the third is refused')
  subscriptions.open('x509-bundles', delegate(8), undefined, asStream(calls[3]))
  t.equal(calls[3].ended, undefined, 'another uid is counted on its own')
  t.equal(subscriptions.size, 3)
  calls[0].emit('cancelled')
  const again = new RecordingCall()
  subscriptions.open('x509-bundles', delegate(7), undefined, asStream(again))
  t.equal(again.ended, undefined, 'a cancelled stream frees its place')
  await until(() => again.written.length === 1, 'the first message')
})

void t.test('delegated subscriptions – a PID subscription ends NOT_FOUND when its process is gone, by the periodic check alone', async t => {
  const subscriptions = await subscriptionsStand(t, { processCheckMs: 50 })
  const child = spawn('sleep', ['60'], { stdio: 'ignore' })
  t.teardown(() => { child.kill('SIGKILL') })
  const pid = child.pid ?? 0
  const pin = pinProcess(pid)
  const call = new RecordingCall()
  subscriptions.open('x509-svids', delegate(7), { selectors: [{ type: 'unix', value: 'uid:64801' }], pin }, asStream(call))
  await until(() => call.written.length === 1, 'the first message')
  await new Promise(resolve => setTimeout(resolve, 200))
  t.equal(call.ended, undefined, 'open while the process runs')
  child.kill('SIGKILL')
  await until(() => call.ended !== undefined, 'the end')
  t.same(call.ended, { code: status.NOT_FOUND, details: `process ${pid} has exited` })
  t.equal(subscriptions.size, 0)

  // A pin whose start time is not the process's (as after PID reuse) is gone too, before the first message.
  const reused = new RecordingCall()
  subscriptions.open('x509-svids', delegate(7), { selectors: [], pin: { pid: process.pid, startTime: '1' } }, asStream(reused))
  await until(() => reused.ended !== undefined, 'the end')
  t.same(reused.ended, { code: status.NOT_FOUND, details: `process ${process.pid} has exited` })
  t.same(reused.written, [], 'nothing was sent for a reused PID')
})
