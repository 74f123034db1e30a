/**
 * Random mutations of a stream (latin1 text): bytes changed, inserted and deleted, with a preference for the
 * bytes parsers split on (CR, LF, SP, HTAB, NUL, VT, FF, NBSP, DEL, `,`, `;`, `"`, `#`, high bytes) and for the
 * places they look at (line ends, colons, digits); lines repeated and reordered; case changed; the numbers of
 * lengths and chunk sizes edited; the stream cut short.
 */
import type { Random } from './random'

const SPECIAL = ['\r', '\n', ' ', '\t', '\x00', '\x0b', '\x0c', '\xa0', '\x7f', ',', ';', '"', '#', '\x80', '\xff', '\x85', ':', '=', '\\', '%', '0', 'a', '\r\n', '\r\n\r\n']
const LANDMARK = /\r\n|[:;, ]|[0-9]+/g

/** `text` with one to three mutations. */
export function mutate (r: Random, text: string): string {
  let mutated = text
  for (let count = r.weighted([[1, 6], [2, 3], [3, 1]]); count > 0; count--) mutated = mutateOnce(r, mutated)
  return mutated
}

function mutateOnce (r: Random, text: string): string {
  const at = position(r, text)
  switch (r.weighted([['replace', 4], ['insert', 4], ['delete', 2], ['line', 2], ['case', 1], ['number', 3], ['truncate', 1]] as const)) {
    case 'replace': return text.slice(0, at) + byte(r) + text.slice(at + 1)
    case 'insert': return text.slice(0, at) + byte(r) + text.slice(at)
    case 'delete': return text.slice(0, at) + text.slice(at + r.between(1, 3))
    case 'line': return lines(r, text)
    case 'case': {
      const end = at + r.between(1, 16)
      const run = text.slice(at, end)
      return text.slice(0, at) + (r.chance(0.5) ? run.toUpperCase() : run.toLowerCase()) + text.slice(end)
    }
    case 'number': return number(r, text)
    case 'truncate': return text.slice(0, at)
  }
}

function byte (r: Random): string {
  return r.chance(0.7) ? r.pick(SPECIAL) : String.fromCharCode(r.int(256))
}

/** Where to mutate: anywhere, or at a place parsers decide on (the first after a random offset). */
function position (r: Random, text: string): number {
  const anywhere = r.int(text.length + 1)
  if (r.chance(0.5)) return anywhere
  const landmark = new RegExp(LANDMARK.source, 'g')
  landmark.lastIndex = anywhere
  const mark = landmark.exec(text)
  return mark === null ? anywhere : mark.index + r.int(mark[0].length + 1)
}

/** A line repeated, two lines swapped, or a line dropped. */
function lines (r: Random, text: string): string {
  const all = text.split('\r\n')
  if (all.length < 2) return text
  const i = r.int(all.length - 1)
  const j = r.int(all.length - 1)
  switch (r.int(3)) {
    case 0: all.splice(j, 0, all[i]); break
    case 1: [all[i], all[j]] = [all[j], all[i]]; break
    default: all.splice(i, 1)
  }
  return all.join('\r\n')
}

/** A run of digits (a length, a chunk size, a status) written as another number. */
function number (r: Random, text: string): string {
  const runs = [...text.matchAll(/[0-9A-Fa-f]+/g)]
  if (runs.length === 0) return text
  const run = r.pick(runs)
  const start = run.index ?? 0
  const value = parseInt(run[0], 16) || 0
  const edits = [String(value + 1), String(Math.max(0, value - 1)), '0', String(value * 2), `0${run[0]}`, `-${run[0]}`, `+${run[0]}`, `${run[0]} `, ` ${run[0]}`,
    'ffffffffffffffff', '10000000000000000', `${run[0]}${run[0]}`, run[0].toUpperCase(), `0x${run[0]}`, '']
  return text.slice(0, start) + r.pick(edits) + text.slice(start + run[0].length)
}
