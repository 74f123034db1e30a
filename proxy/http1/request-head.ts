/**
 * A request head (RFC 9112 §3, §6, §9): its line, its field lines as sent, and what follows from them — framing,
 * whether the client wants the connection closed, the protocols it asks to upgrade to. Everything two parsers
 * could read differently is refused with the status RFC 9112 gives; what is accepted here, llhttp (Node's parser)
 * reads the same way (test/proxy/http1/differential.test.ts holds the two together).
 */
import { closes, headerTokens, NO_TOKENS } from './fields'
import { declaredFraming, NO_BODY } from './framing'
import type { HeadProblem } from './head-problem'
import { splitHead } from './head-split'
import type { HeadLimits } from './limits'
import type { MessageHead } from './message-head'
import { AUTHORITY, parseRequestTarget } from './request-target'
import type { RequestTarget } from './request-target'
import { KNOWN_METHODS } from './syntax'

export interface RequestHead extends MessageHead {
  readonly method: string
  /** The request-target as sent. */
  readonly target: string
  readonly form: RequestTarget['form']
  /** The target to send upstream (origin-form for an absolute-form target). */
  readonly forwardTarget: string
  /** The authority of an absolute-form or CONNECT target, else the Host field's value (undefined without one). */
  readonly authority: string | undefined
  /** Protocols asked for with `Connection: upgrade` and `Upgrade` (lowercased, as listed); empty when not an upgrade. */
  readonly upgrade: readonly string[]
}

const REQUEST_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) ([\x21-\x7e]+) HTTP\/(\d)\.(\d)$/
const HOST = new RegExp(`^${AUTHORITY}$`)

/**
 * Fields a Connection option may not name: dropping them as hop-by-hop would change the framing or the routing the
 * sidecar decided on, or let a client strip an identity field the sidecar sets after it.
 */
const NOT_HOP_BY_HOP = new Set(['content-length', 'transfer-encoding', 'host', 'x-forwarded-client-cert', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-port', 'forwarded'])

/** The request head in `buffer[start, end)` (`end` just past the blank line), or why it is refused. */
export function parseRequestHead (buffer: Buffer, start: number, end: number, limits: HeadLimits): RequestHead | HeadProblem {
  const split = splitHead(buffer, start, end, limits, 400)
  if ('problem' in split) return split
  const line = REQUEST_LINE.exec(split.first)
  if (line === null) return { status: 400, problem: `malformed request line ${JSON.stringify(split.first.slice(0, 80))}` }
  const [, method, target, major, minorDigit] = line
  if (major !== '1' || (minorDigit !== '0' && minorDigit !== '1')) return { status: 505, problem: `HTTP/${major}.${minorDigit} is not supported: HTTP/1.1 or HTTP/1.0` }
  if (!KNOWN_METHODS.has(method)) return { status: 501, problem: `method ${JSON.stringify(method.slice(0, 20))} is not supported` }
  const minor = minorDigit === '0' ? 0 : 1
  const headers = split.headers
  const parsedTarget = parseRequestTarget(method, target)
  if (typeof parsedTarget === 'string') return { status: 400, problem: parsedTarget }
  let host: string | undefined
  for (const header of headers) {
    if (header.lower !== 'host') continue
    if (host !== undefined) return { status: 400, problem: 'more than one Host line (RFC 9112 §3.2)' }
    host = header.value
  }
  if (host === undefined && minor === 1) return { status: 400, problem: 'an HTTP/1.1 request needs a Host line (RFC 9112 §3.2)' }
  if (host !== undefined && !HOST.test(host)) return { status: 400, problem: `Host ${JSON.stringify(host.slice(0, 80))} is not host[:port]` }
  const framing = declaredFraming(headers, minor) ?? NO_BODY
  if ('problem' in framing) return framing
  const connectionOptions = headerTokens(headers, 'connection')
  const named = connectionOptions.find(option => NOT_HOP_BY_HOP.has(option))
  if (named !== undefined) return { status: 400, problem: `Connection may not name ${named}: it is not a hop-by-hop field` }
  const proxyConnectionOptions = headerTokens(headers, 'proxy-connection')
  if (proxyConnectionOptions.includes('upgrade')) return { status: 400, problem: 'Proxy-Connection may not ask for an upgrade: llhttp reads it as Connection' }
  const upgrade = connectionOptions.includes('upgrade') ? headerTokens(headers, 'upgrade') : NO_TOKENS
  // llhttp upgrades on any Upgrade value (`Upgrade: ,`): one that names no protocol would be an upgrade for it alone.
  if (upgrade.length === 0 && connectionOptions.includes('upgrade') && headers.some(h => h.lower === 'upgrade' && h.value !== '')) {
    return { status: 400, problem: 'Upgrade names no protocol' }
  }
  return {
    method,
    target,
    form: parsedTarget.form,
    forwardTarget: parsedTarget.forwarded,
    authority: parsedTarget.authority ?? host,
    minor,
    headers,
    size: end - start,
    framing,
    close: closes(minor, connectionOptions, proxyConnectionOptions),
    connectionOptions,
    upgrade
  }
}
