/** What request and response heads have in common: the fields as sent and what the sidecar reads from them. */
import type { HeaderLine } from './fields'
import type { Framing } from './framing'

export interface MessageHead {
  readonly minor: 0 | 1
  readonly headers: readonly HeaderLine[]
  /** Bytes of the head, its blank line included. */
  readonly size: number
  readonly framing: Framing
  /** The sender wants the connection closed after this message. */
  readonly close: boolean
  /** Connection options, lowercased: these fields are hop-by-hop and never forwarded. */
  readonly connectionOptions: readonly string[]
}
