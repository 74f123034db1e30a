/**
 * The differential rule (DESIGN invariant 8) between the sidecar's reading of a stream and llhttp's: every message
 * the sidecar reads, llhttp reads the same way — method, target, version or status and reason, every field line
 * (names exactly, values as llhttp gives them: llhttp skips the SP/HTAB before a value, Node cuts those after it),
 * body, trailers, whether it switches protocols, and the offset where it ends; where llhttp stops, the sidecar stops.
 * The sidecar may refuse more: that is counted, by the reason it gives.
 */
import type { FieldPair, StreamMessage, StreamResult } from './http1-stream-result'

export type Verdict =
  /** Both read the same messages and stop at the same place for the same kind of reason. */
  | { readonly kind: 'same' }
  /** Both read the same messages, then both refuse (or llhttp waits for bytes that cannot help). */
  | { readonly kind: 'both-refuse' }
  /** The sidecar refused (or closed) where llhttp read on. */
  | { readonly kind: 'stricter', readonly category: string }
  | { readonly kind: 'disagree', readonly problem: string }

export function compareStreams (ours: StreamResult, theirs: StreamResult): Verdict {
  const count = ours.messages.length
  for (let i = 0; i < count; i++) {
    const mine = ours.messages[i]
    const other = theirs.messages.at(i)
    if (other === undefined) return disagree(`the sidecar read message ${i + 1} (to offset ${mine.end}), llhttp did not: ${describe(theirs)}`)
    const difference = messageDifference(mine, other)
    if (difference !== undefined) return disagree(`message ${i + 1}: ${difference}`)
  }
  const outcome = ours.outcome
  const more = theirs.messages.length > count
  switch (outcome.kind) {
    case 'refused':
      return more ? { kind: 'stricter', category: category(outcome.reason) } : { kind: 'both-refuse' }
    case 'closed':
    case 'end':
      if (more) return outcome.kind === 'closed' ? { kind: 'stricter', category: 'closes the connection where llhttp reads on' } : disagree(`llhttp read message ${count + 1} (to offset ${theirs.messages[count].end}) after the end of the stream for the sidecar`)
      return outcome.kind === 'closed' || theirs.outcome.kind === 'end' || theirs.outcome.kind === 'closed' ? { kind: 'same' } : disagree(`the sidecar read the whole stream as ${count} messages, llhttp: ${describe(theirs)}`)
    case 'incomplete':
      return more ? disagree(`llhttp read message ${count + 1} (to offset ${theirs.messages[count].end}) while the sidecar waits for more bytes`) : { kind: 'same' }
    case 'upgrade':
      return !more && theirs.outcome.kind === 'upgrade' ? { kind: 'same' } : disagree(`the sidecar switched protocols after message ${count}, llhttp: ${describe(theirs)}`)
  }
}

/** How two readings of one message differ, if they do. */
export function messageDifference (mine: StreamMessage, other: StreamMessage): string | undefined {
  for (const key of ['method', 'target', 'status', 'reason', 'version', 'upgrade', 'end'] as const) {
    if (mine[key] !== other[key]) return `${key}: sidecar ${JSON.stringify(mine[key])}, llhttp ${JSON.stringify(other[key])}`
  }
  if (!mine.body.equals(other.body)) return `body: sidecar ${JSON.stringify(mine.body.toString('latin1'))}, llhttp ${JSON.stringify(other.body.toString('latin1'))}`
  return fieldsDifference('header', mine.headers, other.headers) ?? fieldsDifference('trailer', mine.trailers, other.trailers)
}

function fieldsDifference (what: string, mine: readonly FieldPair[], other: readonly FieldPair[]): string | undefined {
  for (let i = 0; i < Math.max(mine.length, other.length); i++) {
    const [a, b] = [mine.at(i), other.at(i)]
    if (a?.[0] !== b?.[0] || a?.[1] !== b?.[1]) return `${what} line ${i + 1}: sidecar ${JSON.stringify(a)}, llhttp ${JSON.stringify(b)}`
  }
  return undefined
}

function describe (result: StreamResult): string {
  const ends = result.messages.map(message => message.end).join(', ')
  const outcome = result.outcome.kind === 'refused' ? `refused (${result.outcome.reason})` : result.outcome.kind
  return `${result.messages.length} messages${ends === '' ? '' : ` ending at ${ends}`}, then ${outcome}`
}

/** A refusal's reason (after its status) without the quoted input, the numbers and the spelling of names: what kind of refusal it is. */
export function category (reason: string): string {
  const status = /^\d{3} /.exec(reason)?.[0] ?? ''
  return status + reason.slice(status.length).toLowerCase().replace(/"(?:[^"\\]|\\.)*"/g, '"…"').replace(/\d+/g, 'N')
}

function disagree (problem: string): Verdict {
  return { kind: 'disagree', problem }
}
