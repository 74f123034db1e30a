/**
 * An index of the ID patterns on one side of the rules (`from` or `to`): given a SPIFFE ID, the set of rules
 * with a pattern matching it, as a bitset over rule positions. A trie per trust domain walks the ID's segments
 * once (a literal child and a `*` child per level; `**` patterns sit on the node where their prefix ends), so the
 * cost depends on the ID's length, not the number of rules. Results are cached per ID: a device has few peers.
 */
import { parseSpiffeId } from '../spiffe/id'
import { ANY_SEGMENT, splitSpiffeId } from './id-pattern'
import type { IdPattern } from './id-pattern'

class TrieNode {
  readonly literal = new Map<string, TrieNode>()
  star: TrieNode | undefined
  /** Rules whose pattern ends exactly here. */
  exact: number[] = []
  /** Rules whose pattern ends here with `**`: one or more further segments. */
  deep: number[] = []
}

const CACHE_LIMIT = 4096

export class IdPatternIndex {
  private readonly words: number
  private readonly anyRules: number[] = []
  private readonly domains = new Map<string, TrieNode>()
  private readonly cache = new Map<string, Uint32Array>()

  constructor (ruleCount: number) {
    this.words = Math.max(1, Math.ceil(ruleCount / 32))
  }

  add (pattern: IdPattern, rule: number): void {
    if (pattern.kind === 'any') {
      this.anyRules.push(rule)
      return
    }
    let node = this.domains.get(pattern.trustDomain)
    if (node === undefined) this.domains.set(pattern.trustDomain, node = new TrieNode())
    for (const segment of pattern.segments) {
      if (segment === ANY_SEGMENT) {
        node = node.star ??= new TrieNode()
      } else {
        let child = node.literal.get(segment)
        if (child === undefined) node.literal.set(segment, child = new TrieNode())
        node = child
      }
    }
    (pattern.deep ? node.deep : node.exact).push(rule)
  }

  /**
   * The rules matching `id`, as a bitset (do not modify it). A string is checked as a SPIFFE ID the first time
   * it is seen; an invalid one throws SpiffeIdError.
   */
  match (id: string): Uint32Array {
    const cached = this.cache.get(id)
    if (cached !== undefined) return cached
    parseSpiffeId(id)
    const bits = new Uint32Array(this.words)
    const set = (rules: number[]): void => { for (const rule of rules) bits[rule >>> 5] |= 1 << (rule & 31) }
    set(this.anyRules)
    const { trustDomain, segments } = splitSpiffeId(id)
    const root = this.domains.get(trustDomain)
    if (root !== undefined) walk(root, segments, 0, set)
    if (this.cache.size >= CACHE_LIMIT) this.cache.delete(this.cache.keys().next().value as string)
    this.cache.set(id, bits)
    return bits
  }
}

function walk (node: TrieNode, segments: string[], depth: number, set: (rules: number[]) => void): void {
  if (depth === segments.length) {
    set(node.exact)
    return
  }
  set(node.deep)
  const child = node.literal.get(segments[depth])
  if (child !== undefined) walk(child, segments, depth + 1, set)
  if (node.star !== undefined) walk(node.star, segments, depth + 1, set)
}
