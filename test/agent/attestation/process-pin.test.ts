import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { isSameProcess, pinProcess } from '../../../agent/attestation'
import { parseStartTime } from '../../../agent/attestation/process-pin'
import { thrown } from '../../helpers/errors'

void t.test('process pin – the same process is still the same', async t => {
  const pin = pinProcess(process.pid)
  t.match(pin.startTime, /^\d+$/)
  t.ok(isSameProcess(pin))
})

void t.test('process pin – a process that exited is not the same, and cannot be pinned', async t => {
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'])
  const pin = pinProcess(child.pid as number)
  t.ok(isSameProcess(pin), 'alive')
  child.kill('SIGKILL')
  await once(child, 'exit')
  t.notOk(isSameProcess(pin), 'exited (and reaped)')
  const gone = thrown(() => pinProcess(child.pid as number))
  t.equal(gone.code, 'ERR_ATTESTATION_PROCESS_GONE')
  t.match(gone.message, String(child.pid))
})

void t.test('process pin – the pid with another start time is another process (PID reuse)', async t => {
  const pin = pinProcess(process.pid)
  t.notOk(isSameProcess({ pid: process.pid, startTime: String(Number(pin.startTime) + 1) }))
  t.notOk(isSameProcess({ pid: -1, startTime: pin.startTime }), 'not a pid')
})

void t.test('process pin – start time is field 22 even when comm holds spaces and parentheses', async t => {
  // Fields 3..21 are filler numbers; field 22 (start time) is 987654.
  const after = ['S', ...Array.from({ length: 18 }, (_, i) => String(i + 4)), '987654', '100', '200'].join(' ')
  t.equal(parseStartTime(`77 (evil) 1 2 3 (x) y) ${after}\n`), '987654')
  t.equal(parseStartTime(`77 (plain) ${after}`), '987654')
  t.equal(parseStartTime('77 (short) S 1 2'), undefined, 'too few fields')
  t.equal(parseStartTime('garbage'), undefined, 'no comm')
})
