/**
 * ListAgents' and CountAgents' filter, as SPIRE's server reads it (agent/v1/service.go) and its SQL datastore applies
 * it to attested nodes (listAttestedNodes): every field given must hold. by_expires_before is read with Go's layout
 * "2006-01-02 15:04:05 -0700 -07" and picks agents whose X509-SVID expires before it; a time Go cannot read is its
 * zero time, which SPIRE's datastore takes as no filter. Selector matches are applied in two passes
 * (selector-match.ts); `keeps` is the second, which SPIRE applies to each page cut.
 */
import { status } from '@grpc/grpc-js'
import { SpireApiError } from './api-error'
import { checkSelector } from './entry-mapping'
import type { AgentFilterMessage, AgentMessage } from './messages'
import { isMatchBehavior, selectorMatch } from './selector-match'

export interface AgentQuery {
  readonly matches: (agent: AgentMessage) => boolean
  readonly keeps: (agent: AgentMessage) => boolean
}

type Test = (agent: AgentMessage) => boolean
const ALWAYS: Test = () => true

/**
 * The filter's two passes for `operation` ("list", "count": SPIRE's datastore failures name it); throws
 * SpireApiError with SPIRE's code and message for a filter it refuses.
 */
export function agentQuery (filter: AgentFilterMessage | null, operation: 'list' | 'count'): AgentQuery {
  if (filter === null) return { matches: ALWAYS, keeps: ALWAYS }
  const tests: Test[] = []
  // In SPIRE's order: the service parses the selectors, then the datastore looks at the rest.
  const match = filter.by_selector_match
  const selectors = SpireApiError.within('failed to parse selectors', () => match?.selectors.map(checkSelector) ?? [])
  if (filter.by_banned !== null) {
    const banned = filter.by_banned.value
    tests.push(agent => agent.banned === banned)
  }
  if (filter.by_can_reattest !== null) {
    const canReattest = filter.by_can_reattest.value
    tests.push(agent => agent.can_reattest === canReattest)
  }
  if (filter.by_attestation_type !== '') tests.push(agent => agent.attestation_type === filter.by_attestation_type)
  const before = filter.by_expires_before === '' ? undefined : goTimeSeconds(filter.by_expires_before)
  if (before !== undefined) tests.push(agent => agent.x509svid_expires_at < before)
  let keeps = ALWAYS
  if (match !== null) {
    const failed = `failed to ${operation} agents`
    if (selectors.length === 0) throw new SpireApiError(status.INTERNAL, `${failed}: rpc error: code = InvalidArgument desc = cannot list by empty selectors set`)
    if (!isMatchBehavior(match.match)) throw new SpireApiError(status.INTERNAL, `${failed}: datastore-sql: unhandled match behavior ${String(match.match)}`)
    const query = selectorMatch(selectors, match.match)
    tests.push(agent => query.matches(agent.selectors))
    keeps = agent => query.keeps(agent.selectors)
  }
  return { matches: agent => tests.every(test => test(agent)), keeps }
}

const LAYOUT = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))? ([+-])(\d{2})(\d{2}) ([+-])(\d{2})$/
/** Go's zero time (0001-01-01 00:00:00 UTC), in unix seconds. */
const GO_ZERO = -62135596800

/**
 * Go's time.Parse with SPIRE's layout, in unix seconds (a fraction kept), or undefined where Go gives its zero time:
 * text it cannot read (a field out of range, a day not in its month, extra text) or the zero time itself. As Go
 * does, it takes a fractional second after the seconds, checks the first offset (hours up to 24, minutes up to 60)
 * and uses the last one (hours only).
 */
export function goTimeSeconds (text: string): number | undefined {
  const parts = LAYOUT.exec(text)
  if (parts === null) return undefined
  const [year, month, day, hour, minute, second] = parts.slice(1, 7).map(Number)
  const fraction = parts[7] === undefined ? 0 : Number(`0.${parts[7]}`)
  const [offsetHours, offsetMinutes, lastHours] = [parts[9], parts[10], parts[12]].map(Number)
  if (month < 1 || month > 12 || day < 1 || day > daysIn(month, year) || hour > 23 || minute > 59 || second > 59) return undefined
  if (offsetHours > 24 || offsetMinutes > 60 || lastHours > 24) return undefined
  const utc = new Date(Date.UTC(2000, month - 1, day, hour, minute, second))
  utc.setUTCFullYear(year)
  const seconds = utc.getTime() / 1000 - (parts[11] === '-' ? -1 : 1) * lastHours * 3600
  return seconds === GO_ZERO && fraction === 0 ? undefined : seconds + fraction
}

function daysIn (month: number, year: number): number {
  if (month !== 2) return [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
  return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28
}
