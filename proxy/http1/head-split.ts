/**
 * A complete head (start line and field lines, up to the blank line) split into its lines, within the limits.
 * Finding where a head ends is ByteQueue's job, done once over the bytes however they were split.
 */
import type { HeaderLine } from './fields'
import { parseFieldLines } from './fields'
import type { HeadProblem } from './head-problem'
import type { HeadLimits } from './limits'

export interface SplitHead { readonly first: string, readonly headers: HeaderLine[] }

/** The lines of the head in `buffer[start, end)`, `end` just past its blank line; `status` for a malformed one. */
export function splitHead (buffer: Buffer, start: number, end: number, limits: HeadLimits, status: 400 | 502): SplitHead | HeadProblem {
  if (end - start > limits.maxHeadBytes) return tooLarge(limits, status)
  const lines = buffer.toString('latin1', start, end - 4).split('\r\n')
  if (lines.length - 1 > limits.maxHeaders) return { status: status === 400 ? 431 : status, problem: `more than ${limits.maxHeaders} header lines`, limit: 'too_many_headers' }
  const headers = parseFieldLines(lines, 1)
  return typeof headers === 'string' ? { status, problem: headers } : { first: lines[0], headers }
}

export function tooLarge (limits: HeadLimits, status: 400 | 502): HeadProblem {
  return { status: status === 400 ? 431 : status, problem: `the message head is larger than ${limits.maxHeadBytes} bytes`, limit: 'head_too_large' }
}
