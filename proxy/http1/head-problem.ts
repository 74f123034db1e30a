/** Why a head cannot be used: `status` is what the client is answered; `limit` names the bound it broke, if any. */
export interface HeadProblem {
  readonly status: 400 | 408 | 431 | 501 | 502 | 505
  readonly problem: string
  /** For `chaperone_connections_refused_total{reason}`. */
  readonly limit?: 'too_many_headers' | 'head_too_large' | 'head_timeout'
}

export function isHeadProblem (value: object): value is HeadProblem {
  return 'problem' in value
}
