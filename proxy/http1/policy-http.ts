/** What the policy decides an HTTP request on: its method and normalized path (policy/http-path.ts). */
import { normalizeRequestPath } from '../../policy/http-path'
import type { RequestHead } from './request-head'

/** The method and normalized path of a request in origin-form (what the sidecar forwards), or why it is refused. */
export function policyHttpOf (head: RequestHead): { method: string, path: string } | { problem: string } {
  const normalized = normalizeRequestPath(head.forwardTarget)
  return 'problem' in normalized ? normalized : { method: head.method, path: normalized.path }
}
