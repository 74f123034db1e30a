/**
 * A minimal incremental HTTP/1.1 response reader for the load clients: status line and headers, then a body of
 * Content-Length bytes that is counted, not kept. Chunked bodies are refused (the benchmark's backend always
 * sends a length), so a misread can only fail loudly, never shift responses.
 */

export interface Response { readonly status: number, readonly headers: ReadonlyMap<string, string> }

const HEAD_END = Buffer.from('\r\n\r\n')
const MAX_HEAD = 64 * 1024

export class ResponseParser {
  private head: Buffer = Buffer.alloc(0)
  private bodyLeft = 0
  /** The response whose body is being counted. */
  private pending: Response | undefined

  /** Feeds bytes as they arrive; returns the responses they complete, in order. */
  feed (chunk: Buffer): Response[] {
    const done: Response[] = []
    let data = chunk
    while (data.length > 0) {
      if (this.bodyLeft > 0) {
        const taken = Math.min(this.bodyLeft, data.length)
        this.bodyLeft -= taken
        data = data.subarray(taken)
        if (this.bodyLeft === 0) done.push(this.pending as Response)
        continue
      }
      // Search from just before the new bytes: the blank line can straddle two chunks.
      const from = Math.max(0, this.head.length - HEAD_END.length + 1)
      this.head = this.head.length === 0 ? data : Buffer.concat([this.head, data])
      const end = this.head.indexOf(HEAD_END, from)
      if (end < 0) {
        if (this.head.length > MAX_HEAD) throw new Error(`no end of response headers in ${MAX_HEAD} bytes`)
        return done
      }
      const response = parseHead(this.head.subarray(0, end).toString('latin1'))
      data = this.head.subarray(end + HEAD_END.length)
      this.head = Buffer.alloc(0)
      this.bodyLeft = bodyLength(response)
      if (this.bodyLeft === 0) done.push(response)
      else this.pending = response
    }
    return done
  }
}

export function parseHead (text: string): Response {
  const [statusLine, ...lines] = text.split('\r\n')
  const status = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(statusLine)
  if (status === null) throw new Error(`not an HTTP/1.x status line: ${JSON.stringify(statusLine.slice(0, 80))}`)
  const headers = new Map<string, string>()
  for (const line of lines) {
    const colon = line.indexOf(':')
    if (colon <= 0) throw new Error(`malformed header line: ${JSON.stringify(line.slice(0, 80))}`)
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim())
  }
  return { status: Number(status[1]), headers }
}

function bodyLength (response: Response): number {
  if (response.status === 204 || response.status === 304 || (response.status >= 100 && response.status < 200)) return 0
  if (/chunked/i.test(response.headers.get('transfer-encoding') ?? '')) throw new Error('chunked responses are not supported by this client')
  const length = response.headers.get('content-length')
  if (length === undefined || !/^\d+$/.test(length)) throw new Error(`a ${response.status} response without a usable Content-Length (${String(length)})`)
  return Number(length)
}

/** Whether the server means to close the connection after this response (what wrk checks before reusing it). */
export function closesConnection (response: Response): boolean {
  return (response.headers.get('connection') ?? '').toLowerCase().split(',').some(token => token.trim() === 'close')
}
