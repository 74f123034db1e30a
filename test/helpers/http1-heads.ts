/**
 * Heads for the HTTP/1.1 engine's unit tests (not a test itself): text in, the parsed head or the problem out,
 * found and parsed as the connection does (the end of the head first, then the head).
 */
import { BAD_LINE_END, ByteQueue, NO_HEAD_YET } from '../../proxy/http1/byte-queue'
import type { HeadProblem } from '../../proxy/http1/head-problem'
import { DEFAULT_HEAD_LIMITS } from '../../proxy/http1/limits'
import type { HeadLimits } from '../../proxy/http1/limits'
import { parseRequestHead } from '../../proxy/http1/request-head'
import type { RequestHead } from '../../proxy/http1/request-head'
import { parseResponseHead } from '../../proxy/http1/response-head'
import type { ResponseHead } from '../../proxy/http1/response-head'

function headOf<T> (text: string | Buffer, parse: (buffer: Buffer, end: number) => T | HeadProblem): T | HeadProblem | undefined {
  const queue = new ByteQueue()
  queue.append(Buffer.isBuffer(text) ? text : Buffer.from(text, 'latin1'))
  const length = queue.headLength()
  if (length === BAD_LINE_END) return { status: 400, problem: 'a line of the head does not end in CRLF' }
  return length === NO_HEAD_YET ? undefined : parse(queue.view(), length)
}

export function request (text: string | Buffer, limits: HeadLimits = DEFAULT_HEAD_LIMITS): RequestHead | HeadProblem | undefined {
  return headOf(text, (buffer, end) => parseRequestHead(buffer, 0, end, limits))
}

export function response (text: string | Buffer, method = 'GET', limits: HeadLimits = DEFAULT_HEAD_LIMITS): ResponseHead | HeadProblem | undefined {
  return headOf(text, (buffer, end) => parseResponseHead(buffer, 0, end, method, limits))
}

export function requestHead (text: string): RequestHead {
  const parsed = request(text)
  if (parsed === undefined || 'problem' in parsed) throw new Error(`not a request head: ${JSON.stringify(parsed)}`)
  return parsed
}

export function responseHead (text: string, method = 'GET'): ResponseHead {
  const parsed = response(text, method)
  if (parsed === undefined || 'problem' in parsed) throw new Error(`not a response head: ${JSON.stringify(parsed)}`)
  return parsed
}
