/**
 * What a reader of an HTTP/1.1 byte stream makes of it, in one shape for both readers the differential test holds
 * together: the sidecar's own (http1-stream.ts) and Node's llhttp (llhttp-oracle.ts).
 */

export type MessageKind = 'request' | 'response'

/** A field line as the reader gives it: the name as sent, the value without the whitespace the reader drops. */
export type FieldPair = readonly [name: string, value: string]

export interface StreamMessage {
  /** Requests: the method and the request-target as sent. */
  readonly method?: string
  readonly target?: string
  /** Responses: the status code and the reason phrase. */
  readonly status?: number
  readonly reason?: string
  /** `1.1`, `1.0`. */
  readonly version: string
  readonly headers: readonly FieldPair[]
  readonly body: Buffer
  /** The trailer section of a chunked body (empty otherwise). */
  readonly trailers: readonly FieldPair[]
  /** After this message the stream is another protocol (an upgrade, CONNECT, a 101). */
  readonly upgrade: boolean
  /**
   * The connection goes on after this message, as the reader says at the end of its head (llhttp's as Node's callback
   * hears it, before a body is skipped). For diagnosis only: the comparison goes by what each reader reads next.
   */
  readonly keepAlive: boolean
  /** The offset in the stream just past the message's last byte. */
  readonly end: number
}

export type StreamOutcome =
  /** The stream ended where a message did. */
  | { readonly kind: 'end' }
  /** The last message closes the connection: what follows it, if anything, is not read as HTTP. */
  | { readonly kind: 'closed' }
  /** The last message switched protocols: what follows is not HTTP. */
  | { readonly kind: 'upgrade' }
  /** The stream ended inside a message: the reader waits for more. */
  | { readonly kind: 'incomplete' }
  /** The reader refused the message after the last one it read. */
  | { readonly kind: 'refused', readonly reason: string }

export interface StreamResult {
  readonly messages: readonly StreamMessage[]
  readonly outcome: StreamOutcome
}

/** A stream to read: its bytes, and for responses the methods of the requests they answer, in order (GET after the last). */
export interface StreamInput {
  readonly kind: MessageKind
  readonly bytes: Buffer
  readonly methods: readonly string[]
}

/** The method the `index`th final response answers. */
export function methodOf (input: StreamInput, index: number): string {
  return input.methods[index] ?? 'GET'
}
