/**
 * The differential test's cases, each made again from (seed, index) alone: a quarter valid streams, a quarter
 * smuggling shapes (followed by valid messages, so that a different end shows), half mutations of either. Each
 * case also says where to cut the stream into the pieces the sidecar reads it in.
 */
import type { MessageKind, StreamInput } from '../http1-stream-result'
import { CHUNK_SHAPES } from './chunk-shapes'
import { serialize } from './draft'
import type { Draft } from './draft'
import { FRAMING_SHAPES } from './framing-shapes'
import { LINE_SHAPES } from './line-shapes'
import { mutate } from './mutate'
import { caseSeed, Random } from './random'
import { RESPONSE_SHAPES } from './response-shapes'
import type { Shape } from './shape'
import { validStream } from './valid'

export const SHAPES: readonly Shape[] = [...FRAMING_SHAPES, ...LINE_SHAPES, ...CHUNK_SHAPES, ...RESPONSE_SHAPES]
const SHAPES_OF: Readonly<Record<MessageKind, readonly Shape[]>> = {
  request: SHAPES.filter(shape => shape.kind === 'request'),
  response: SHAPES.filter(shape => shape.kind === 'response')
}

export interface GeneratedCase {
  /** `valid`, `shape <name>`, or either with ` mutated`. */
  readonly label: string
  readonly input: StreamInput
  /** Where the sidecar's reader gets the stream cut into pieces. */
  readonly cuts: readonly number[]
  /** Where each message was made to end (before any mutation): hints for the oracle. */
  readonly boundaries: readonly number[]
  /** Valid streams: where each message ends. */
  readonly ends?: readonly number[]
}

interface Built { readonly label: string, readonly kind: MessageKind, readonly messages: readonly Draft[] }

export function generateCase (seed: number, index: number): GeneratedCase {
  const r = new Random(caseSeed(seed, index))
  const kind: MessageKind = r.chance(0.55) ? 'request' : 'response'
  const roll = r.float()
  const built = roll < 0.25 || (roll >= 0.5 && roll < 0.75) ? valid(r, kind) : shaped(r, kind)
  const texts = built.messages.map(serialize)
  let text = texts.join('')
  let length = 0
  const boundaries = texts.map((message, i) => (length += message.length) - built.messages[i].tail.length)
  const mutated = roll >= 0.5
  if (mutated) text = mutate(r, text)
  const bytes = Buffer.from(text, 'latin1')
  const cuts = r.chance(0.3) ? Array.from({ length: r.between(1, 3) }, () => r.int(bytes.length + 1)) : []
  return {
    label: `${built.label}${mutated ? ' mutated' : ''}`,
    input: { kind: built.kind, bytes, methods: finalMethods(built.messages) },
    cuts,
    boundaries,
    ...(mutated || built.label !== 'valid' ? {} : { ends: boundaries })
  }
}

function valid (r: Random, kind: MessageKind): Built {
  return { label: 'valid', kind, messages: validStream(r, kind) }
}

/** A shape of `kind`, then up to two valid messages (when it does not end the stream). */
function shaped (r: Random, kind: MessageKind): Built {
  const shape = r.pick(SHAPES_OF[kind])
  return { label: `shape ${shape.name}`, kind, messages: shapeStream(r, shape) }
}

export function shapeStream (r: Random, shape: Shape): Draft[] {
  const messages = shape.make(r)
  if (messages.at(-1)?.last !== true && messages.at(-1)?.tail === '') messages.push(...validStream(r, shape.kind).slice(0, r.int(3)))
  return messages
}

/** The methods the final responses of a stream answer (an interim response answers the same request as the next). */
function finalMethods (messages: readonly Draft[]): string[] {
  return messages.filter(message => message.kind === 'response' && !/^HTTP\/1\.[01] 1(?!01)[0-9][0-9]/.test(message.start)).map(message => message.method)
}
