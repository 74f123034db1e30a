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

export class Tally {
  cases = 0
  readonly #verdicts = new Map<string, number>()
  readonly #stricter = new Map<string, number>()
  readonly disagreements: string[] = []
  /** Valid streams the sidecar did not read whole, at the generated boundaries. */
  readonly unreadValid: string[] = []

  add (seed: number, index: number, generated: GeneratedCase, judged: Judged): void {
    this.cases++
    const { verdict, ours } = judged
    this.#verdicts.set(verdict.kind, (this.#verdicts.get(verdict.kind) ?? 0) + 1)
    const where = `seed ${seed} case ${index} (${generated.label}${generated.cuts.length > 0 ? `, cut at ${generated.cuts.join(', ')}` : ''})`
    if (verdict.kind === 'stricter') this.#stricter.set(verdict.category, (this.#stricter.get(verdict.category) ?? 0) + 1)
    if (verdict.kind === 'disagree' && this.disagreements.length < SHOWN) this.disagreements.push(`${where}: ${verdict.problem}\n    ${describeInput(generated.input)}`)
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
      ...(stricter.length > 25 ? [`  (${stricter.length - 25} rarer reasons)`] : [])
    ]
  }
}
