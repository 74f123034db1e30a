/**
 * A smuggling shape: a named way of making a message that two parsers could delimit or read differently (RFC 9112
 * §2–§9 and the shapes desync attacks use). Each shape makes the messages from a plain one, of one kind or both.
 */
import type { MessageKind } from '../http1-stream-result'
import { bodyData, draft, field, insertField, plainField, setChunked, setLength } from './draft'
import type { ChunkOptions, Draft } from './draft'
import type { Random } from './random'
import { host } from './valid'

export interface Shape {
  readonly name: string
  readonly kind: MessageKind
  /** The shaped message, after any it needs before it (an interim response). */
  readonly make: (r: Random) => Draft[]
}

/** The shape `name` for each kind in `kinds`, made by `make` from a plain message of that kind. */
export function shapes (name: string, kinds: readonly MessageKind[], make: (r: Random, message: Draft) => Draft | Draft[] | void): Shape[] {
  return kinds.map(kind => ({
    name,
    kind,
    make: r => {
      const message = plain(r, kind)
      const made = make(r, message)
      return made === undefined ? [message] : Array.isArray(made) ? made : [made]
    }
  }))
}

export const BOTH: readonly MessageKind[] = ['request', 'response']
export const REQUEST: readonly MessageKind[] = ['request']
export const RESPONSE: readonly MessageKind[] = ['response']

/** A plain message: a POST with a Host, or a 200 to a GET; a few fields, no body yet. */
export function plain (r: Random, kind: MessageKind, minor = 1): Draft {
  const message = kind === 'request'
    ? draft('request', `POST /${r.pick(['', 'api/items', 'upload?x=1'])} HTTP/1.${minor}`, 'POST')
    : draft('response', `HTTP/1.${minor} 200 OK`, 'GET')
  if (kind === 'request') message.fields.push(field(r, 'Host', host(r)))
  for (let i = r.int(3); i > 0; i--) insertField(r, message, plainField(r))
  if (minor === 0) message.fields.push('Connection: keep-alive')
  return message
}

/** A few bytes of body, sent with Content-Length (as written by `value`, from the length). */
export function lengthBody (r: Random, message: Draft, value?: (length: number) => string): number {
  const data = bodyData(r, r.between(1, 24))
  setLength(r, message, data, value?.(data.length))
  return data.length
}

/** A few bytes of body, sent chunked (with `options`, Transfer-Encoding `coding`). */
export function chunkBody (r: Random, message: Draft, options: ChunkOptions = {}, coding?: string): void {
  setChunked(r, message, bodyData(r, r.between(1, 40)), options, coding)
}

/** Puts `line` just before (`after` false) or after the first field matching `name`. */
export function placeNear (message: Draft, name: RegExp, line: string, after: boolean): void {
  const at = message.fields.findIndex(existing => name.test(existing))
  message.fields.splice(at === -1 ? message.fields.length : at + (after ? 1 : 0), 0, line)
}

/** `length` as a hex chunk size. */
export function hex (length: number): string {
  return length.toString(16)
}
