/**
 * Where a V8 heap goes, by class: a heap snapshot's nodes summed by constructor name (objects, and native and system
 * objects by their name), by kind for the rest (strings, arrays, code, closures …). Two snapshots of one program
 * serving N₁ and N₂ apps, diffed and divided by N₂ − N₁, give each class's share of the heap one more app costs.
 * Self sizes only (what each object holds itself, not what it keeps alive), so the shares add up.
 */
import { readFileSync } from 'node:fs'

export interface ClassSize { readonly bytes: number, readonly count: number }
export type HeapClasses = ReadonlyMap<string, ClassSize>

interface Snapshot {
  readonly snapshot: { readonly meta: { readonly node_fields: readonly string[], readonly node_types: readonly unknown[] } }
  readonly nodes: readonly number[]
  readonly strings: readonly string[]
}

/** Kinds whose nodes are told apart by their name; the rest are summed by kind. */
const BY_NAME = new Set(['object', 'native', 'hidden'])

/** Self sizes summed by class, from a parsed .heapsnapshot (V8's format: a flat array of node fields). */
export function heapClasses (snapshot: Snapshot): HeapClasses {
  const fields = snapshot.snapshot.meta.node_fields
  const types = snapshot.snapshot.meta.node_types[0] as readonly string[]
  const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map(field => fields.indexOf(field))
  if (typeAt < 0 || nameAt < 0 || sizeAt < 0) throw new Error('not a V8 heap snapshot: its nodes have no type, name or self_size')
  const classes = new Map<string, { bytes: number, count: number }>()
  for (let i = 0; i < snapshot.nodes.length; i += fields.length) {
    const type = types[snapshot.nodes[i + typeAt]] ?? 'unknown'
    const key = BY_NAME.has(type) ? `${type === 'object' ? '' : `${type}: `}${snapshot.strings[snapshot.nodes[i + nameAt]]}` : `(${type})`
    const entry = classes.get(key) ?? { bytes: 0, count: 0 }
    entry.bytes += snapshot.nodes[i + sizeAt]
    entry.count++
    classes.set(key, entry)
  }
  return classes
}

export function readHeapClasses (file: string): HeapClasses {
  return heapClasses(JSON.parse(readFileSync(file, 'utf8')) as Snapshot)
}

export interface ClassPerApp { readonly name: string, readonly bytesPerApp: number, readonly countPerApp: number }

/** Each class's growth from `fewer` to `more` apps, per app, largest first; the `top` largest. */
export function perAppGrowth (fewer: { apps: number, classes: HeapClasses }, more: { apps: number, classes: HeapClasses }, top: number): ClassPerApp[] {
  const apps = more.apps - fewer.apps
  if (apps <= 0) throw new Error('the second snapshot must serve more apps than the first')
  const names = new Set([...fewer.classes.keys(), ...more.classes.keys()])
  return [...names].map(name => {
    const [a, b] = [fewer.classes.get(name), more.classes.get(name)]
    return { name, bytesPerApp: ((b?.bytes ?? 0) - (a?.bytes ?? 0)) / apps, countPerApp: ((b?.count ?? 0) - (a?.count ?? 0)) / apps }
  }).sort((x, y) => y.bytesPerApp - x.bytesPerApp).slice(0, top)
}
