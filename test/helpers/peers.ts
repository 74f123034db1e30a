/**
 * Clients that are not sidecars, for proxy tests (not a test itself: tap runs only *.test.ts): a program kept
 * running until its output says enough (openssl s_client), raw TCP and TLS exchanges that report what came back
 * before the peer closed, SVID files for CLIs, and a poll for log lines that may land a moment after a close.
 */
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import type { Socket } from 'node:net'
import { join } from 'node:path'
import { connect as tlsConnect } from 'node:tls'
import type { ConnectionOptions } from 'node:tls'
import type { Run } from './cli'

/**
 * Runs a program with `input` on its stdin (left open: s_client would hang up at its end), until `done(stdout)`
 * holds (then stops it with SIGTERM), it exits by itself, or `timeoutMs` pass (then it is killed, `timedOut`).
 */
export async function runUntil (command: string, args: string[], input: string, done: (stdout: string) => boolean, timeoutMs = 5000): Promise<Run & { timedOut: boolean }> {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] })
  const output = { stdout: '', stderr: '', timedOut: false }
  const timer = setTimeout(() => {
    output.timedOut = true
    child.kill('SIGKILL')
  }, timeoutMs)
  child.stdout.on('data', (chunk: Buffer) => {
    output.stdout += chunk.toString()
    if (done(output.stdout)) child.kill('SIGTERM')
  })
  child.stderr.on('data', (chunk: Buffer) => { output.stderr += chunk.toString() })
  child.stdin.on('error', () => { /* the program may exit before reading its input */ })
  child.stdin.write(input)
  const status = await new Promise<number | null>(resolve => child.on('close', resolve))
  clearTimeout(timer)
  return { status, ...output }
}

/** What a connection brought back before it closed (or `timeoutMs` passed, then `timedOut`), and its error if any. */
export interface Exchange { received: string, error?: string, timedOut: boolean }

/**
 * Collects what `socket` receives until the peer closes it, `enough(received)` holds (then we close), or the
 * time runs out. `start` is called once the socket is ready to write (connect or secureConnect).
 */
async function collect (socket: Socket, ready: string, start: () => void, enough: (received: string) => boolean, timeoutMs: number): Promise<Exchange> {
  return await new Promise(resolve => {
    const result: Exchange = { received: '', timedOut: false }
    const timer = setTimeout(() => {
      result.timedOut = true
      socket.destroy()
    }, timeoutMs)
    socket.once(ready, start)
    socket.on('data', (chunk: Buffer) => {
      result.received += chunk.toString()
      if (enough(result.received)) socket.end()
    })
    socket.on('error', (err: NodeJS.ErrnoException) => { result.error = err.code ?? err.message })
    socket.on('close', () => {
      clearTimeout(timer)
      resolve(result)
    })
  })
}

/** Plain TCP to loopback (from `localAddress` if given): sends `text`, returns what came back before the other end closed. */
export async function tcpExchange (port: number, text: string | Buffer, options: { localAddress?: string, enough?: (received: string) => boolean, timeoutMs?: number } = {}): Promise<Exchange> {
  const socket = connect({ port, host: '127.0.0.1', ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }) })
  return await collect(socket, 'connect', () => socket.write(text), options.enough ?? (() => false), options.timeoutMs ?? 3000)
}

/**
 * TLS (no server verification: the sidecar's certificate names no host, and the server is not under test):
 * sends `text` after the handshake and returns the echo, ending once `text.length` characters came back.
 * `localAddress` (a socket.connect option tls.connect passes on, missing from its type) picks the source address.
 */
export async function tlsExchange (options: ConnectionOptions & { localAddress?: string }, text: string, timeoutMs = 3000): Promise<Exchange> {
  const socket = tlsConnect({ host: '127.0.0.1', rejectUnauthorized: false, ...options })
  return await collect(socket, 'secureConnect', () => socket.write(text), received => received.length >= text.length, timeoutMs)
}

/** Writes an SVID's certificate chain and key as `<name>.pem` and `<name>.key` into `dir`. */
export function writeSvidFiles (dir: string, name: string, svid: { certPem: string, keyPem: string }): { cert: string, key: string } {
  const files = { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) }
  writeFileSync(files.cert, svid.certPem)
  writeFileSync(files.key, svid.keyPem, { mode: 0o600 })
  return files
}

/** The first element of `items` that `match` accepts, waiting up to `timeoutMs` for it to appear. */
export async function waitFor<T> (items: readonly T[], match: (item: T) => boolean, timeoutMs = 2000): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const found = items.find(match)
    if (found !== undefined || Date.now() > deadline) return found
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}
