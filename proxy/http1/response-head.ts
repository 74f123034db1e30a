/**
 * A response head (RFC 9112 §4, §6.3) read by the sidecar from an upstream (the app inbound, the peer's sidecar
 * outbound): status, field lines, and the body's framing, which depends on the request's method and the status.
 * Anything ambiguous is refused (502 to the client), as for requests.
 */
import { closes, headerTokens } from './fields'
import { declaredFraming, NO_BODY, UNTIL_CLOSE } from './framing'
import type { Framing } from './framing'
import type { HeadProblem } from './head-problem'
import { splitHead } from './head-split'
import type { HeadLimits } from './limits'
import type { MessageHead } from './message-head'

export interface ResponseHead extends MessageHead {
  readonly status: number
  readonly reason: string
  /** How long the server keeps an idle connection open, from `Keep-Alive: timeout=<s>`, if it says. */
  readonly keepAliveMs: number | undefined
}

const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9][0-9][0-9])(?: ([\t\x20-\x7e\x80-\xff]*))?$/

/** Whether a response to `method` with `status` has a body at all (RFC 9112 §6.3 rules 1–2). */
export function responseHasBody (method: string, status: number): boolean {
  return method !== 'HEAD' && status >= 200 && status !== 204 && status !== 304
}

/** The response head in `buffer[start, end)` to a request with `method`, or why it is refused (502). */
export function parseResponseHead (buffer: Buffer, start: number, end: number, method: string, limits: HeadLimits): ResponseHead | HeadProblem {
  const split = splitHead(buffer, start, end, limits, 502)
  if ('problem' in split) return split
  const line = STATUS_LINE.exec(split.first)
  if (line === null) return { status: 502, problem: `malformed status line ${JSON.stringify(split.first.slice(0, 80))}` }
  const minor = line[1] === '0' ? 0 : 1
  const status = Number(line[2])
  const headers = split.headers
  const declared = declaredFraming(headers, minor)
  if (declared !== undefined && 'problem' in declared) return { status: 502, problem: declared.problem }
  // Without a body the length fields only describe what a GET would get (HEAD, 304): checked, not followed.
  const framing: Framing = !responseHasBody(method, status) ? NO_BODY : declared ?? UNTIL_CLOSE
  const connectionOptions = headerTokens(headers, 'connection')
  const proxyConnectionOptions = headerTokens(headers, 'proxy-connection')
  if (proxyConnectionOptions.includes('upgrade')) return { status: 502, problem: 'Proxy-Connection may not announce an upgrade: llhttp reads it as Connection' }
  const close = framing.kind === 'close' || closes(minor, connectionOptions, proxyConnectionOptions)
  // llhttp stops after an interim response that closes: the final one after it would be read by the sidecar alone.
  if (status < 200 && status !== 101 && close) return { status: 502, problem: `a ${status} interim response may not close the connection` }
  const timeout = /(?:^|[\s,])timeout=(\d{1,6})\b/i.exec(headers.find(h => h.lower === 'keep-alive')?.value ?? '')
  return { status, reason: line[3] ?? '', minor, headers, size: end - start, framing, close, connectionOptions, keepAliveMs: timeout === null ? undefined : Number(timeout[1]) * 1000 }
}
