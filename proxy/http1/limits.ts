/** The bounds of one HTTP message head (configurable per sidecar: `http.maxHeaders`, `http.maxHeadBytes`). */
export interface HeadLimits {
  /** Field lines a head may have (Envoy's default, 100); more get 431 (a response: 502). */
  readonly maxHeaders: number
  /** Bytes a head may take, the blank line included; more get 431 (a response: 502). */
  readonly maxHeadBytes: number
}

export const DEFAULT_HEAD_LIMITS: HeadLimits = Object.freeze({ maxHeaders: 100, maxHeadBytes: 64 * 1024 })

/** A chunk-size line or a trailer line longer than this is refused (no real peer needs more). */
export const MAX_BODY_LINE = 4096
