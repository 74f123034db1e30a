/**
 * The differential test's bookkeeping: one stream judged (the sidecar's reading, llhttp's, the verdict), and the
 * tally of a run — how many agreed, how many both refused, where the sidecar is stricter and why, and every
 * disagreement with what it takes to make it again (seed, index, bytes).
 */
import { compareStreams } from './http1-compare'
import type { Verdict } from './http1-compare'
import type { GeneratedCase } from './http1-gen/cases'
import { readWithSidecar } from './http1-stream'
import type { StreamInput, StreamResult } from './http1-stream-result'
import { readWithLlhttp } from './llhttp-oracle'

export interface Judged { readonly ours: StreamResult, readonly theirs: StreamResult, readonly verdict: Verdict }

/** Reads `input` both ways (the sidecar's in pieces cut at `cuts`) and compares; `hints` are where messages may end. */
export function judge (input: StreamInput, cuts: readonly number[] = [], hints: readonly number[] = []): Judged {
  const ours = readWithSidecar(input, { cuts })
  const theirs = readWithLlhttp(input, { hints: [...ours.messages.map(message => message.end), ...hints] })
  return { ours, theirs, verdict: compareStreams(ours, theirs) }
}

/** How a stream is shown in a failure: its kind, its bytes (latin1, escaped) and the methods responses answer. */
export function describeInput (input: StreamInput): string {
  return `${input.kind} ${JSON.stringify(input.bytes.toString('latin1'))}${input.kind === 'response' ? ` answering ${input.methods.join(', ') || 'GET'}` : ''}`
}

const SHOWN = 20

/**
 * Disagreements known and not fixed on this branch, each with the reason: counted and shown apart (the test marks
 * them todo), so that a fuzz run fails only on new ones.
 */
const KNOWN: ReadonlyArray<{ readonly why: string, readonly matches: (input: StreamInput, judged: Judged) => boolean }> = [{
  // llhttp 9.3 takes any byte after the CR that ends a status line, so `HTTP/1.1 200 OK\r\r\r\n` is a complete head
  // for it; ByteQueue.headLength looks for CRLF CRLF and waits, refusing once one arrives. Nothing is read
  // differently, but the sidecar waits where it could refuse: ByteQueue should refuse a CR not followed by LF.
  why: 'a status line ended by CR CR: llhttp reads the head, the sidecar waits for CRLF CRLF (ByteQueue)',
  matches: (input, { ours, theirs }) => {
    const from = ours.messages.at(-1)?.end ?? 0
    return input.kind === 'response' && ours.outcome.kind === 'incomplete' && theirs.messages.length > ours.messages.length &&
      /^[^\r\n]*\r\r/.test(input.bytes.toString('latin1', from, from + 200)) && input.bytes.indexOf('\r\n\r\n', from) === -1
  }
}]

export class Tally {
  cases = 0
  readonly #verdicts = new Map<string, number>()
  readonly #stricter = new Map<string, number>()
  readonly disagreements: string[] = []
  /** Disagreements in KNOWN, by why. */
  readonly known = new Map<string, number>()
  /** Valid streams the sidecar did not read whole, at the generated boundaries. */
  readonly unreadValid: string[] = []

  add (seed: number, index: number, generated: GeneratedCase, judged: Judged): void {
    this.cases++
    const { verdict, ours } = judged
    this.#verdicts.set(verdict.kind, (this.#verdicts.get(verdict.kind) ?? 0) + 1)
    const where = `seed ${seed} case ${index} (${generated.label}${generated.cuts.length > 0 ? `, cut at ${generated.cuts.join(', ')}` : ''})`
    if (verdict.kind === 'stricter') this.#stricter.set(verdict.category, (this.#stricter.get(verdict.category) ?? 0) + 1)
    const known = verdict.kind === 'disagree' ? KNOWN.find(candidate => candidate.matches(generated.input, judged)) : undefined
    if (known !== undefined) this.known.set(known.why, (this.known.get(known.why) ?? 0) + 1)
    else if (verdict.kind === 'disagree' && this.disagreements.length < SHOWN) this.disagreements.push(`${where}: ${verdict.problem}\n    ${describeInput(generated.input)}`)
    const ends = ours.messages.map(message => message.end).join(',')
    if (generated.ends !== undefined && (verdict.kind !== 'same' || ends !== generated.ends.join(',')) && this.unreadValid.length < SHOWN) {
      this.unreadValid.push(`${where}: ${verdict.kind}, ends ${ends} for ${generated.ends.join(',')}\n    ${describeInput(generated.input)}`)
    }
  }

  /** A short summary: verdicts, and the sidecar's extra refusals by reason (most frequent first). */
  summary (ms: number): string[] {
    const percent = (n: number): string => `${(100 * n / Math.max(1, this.cases)).toFixed(1)}%`
    const verdicts = [...this.#verdicts].sort((a, b) => b[1] - a[1]).map(([kind, n]) => `${kind} ${n} (${percent(n)})`).join(', ')
    const stricter = [...this.#stricter].sort((a, b) => b[1] - a[1])
    return [
      `${this.cases} streams in ${(ms / 1000).toFixed(1)} s: ${verdicts}`,
      `the sidecar refused where llhttp read on in ${percent(stricter.reduce((sum, [, n]) => sum + n, 0))} of streams; by reason:`,
      ...stricter.slice(0, 25).map(([category, n]) => `  ${String(n).padStart(7)}  ${category}`),
      ...(stricter.length > 25 ? [`  (${stricter.length - 25} rarer reasons)`] : []),
      ...[...this.known].map(([why, n]) => `known disagreement, not fixed here (${n}): ${why}`)
    ]
  }
}
