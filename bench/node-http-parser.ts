/**
 * Node's own HTTP/1.1 parser, llhttp, as Node's http server and client drive it: the HTTPParser binding that
 * `_http_common` exposes (a public module of Node's, reached without the deprecated process.binding). Used by the
 * HTTP parsing benchmark and by the tests' llhttp oracle (test/helpers/llhttp-oracle.ts).
 */

/** What `execute` and `finish` return for a parse error: llhttp's code (HPE_…), its reason, and the bytes it took. */
export interface ParseError extends Error { readonly code: string, readonly reason: string, readonly bytesParsed: number }

export interface NodeParser {
  /** `type` REQUEST or RESPONSE; `lenient` 0 (kLenientNone) is strict mode, as Node runs by default. */
  initialize: (type: number, resource: object, maxHeaderSize: number, lenient: number) => void
  /** Parses `data`: the bytes taken (fewer when llhttp paused for an upgrade), or the error. */
  execute: (data: Buffer) => number | ParseError
  /** The end of the stream: completes a body delimited by it, or says the message was cut short. */
  finish: () => ParseError | undefined
  close: () => void
  /** Callbacks, at the indexes kOnMessageBegin … kOnMessageComplete. */
  [callback: number]: unknown
}

interface NodeParserClass {
  new (): NodeParser
  readonly REQUEST: number
  readonly RESPONSE: number
  readonly kOnMessageBegin: number
  readonly kOnHeaders: number
  readonly kOnHeadersComplete: number
  readonly kOnBody: number
  readonly kOnMessageComplete: number
  readonly kLenientNone: number
}

interface HttpCommon { readonly HTTPParser: NodeParserClass, readonly methods: readonly string[] }

const common = process.getBuiltinModule('_http_common') as HttpCommon

export const HTTPParser: NodeParserClass = common.HTTPParser

/** llhttp's method numbers are the positions in Node's `methods`, but for QUERY, numbered after the RTSP methods. */
const QUERY_METHOD = 46

/** The name of llhttp's method number `id`. */
export function methodName (id: number): string {
  return id === QUERY_METHOD ? 'QUERY' : common.methods[id]
}
