/**
 * bench/results.svg, readable at a glance: one panel per headline figure, a horizontal bar per path coloured by
 * proxy, its value and ratio to haproxy written at its end, and haproxy's value in the same mode marked across
 * the bar by a dark line. Plain SVG text, no dependencies.
 */
import { FIGURES, formatNumber, formatRatio, ratio, referenceOf } from './figures'
import type { Figure, PathResult, Proxy } from './figures'

export const COLOURS: Record<Proxy, string> = { Chaperone: '#2f6fb3', haproxy: '#e8871e', nginx: '#3a9a4a', ghostunnel: '#8e5cc2', 'Node.js': '#c2455c', direct: '#9a9a9a' }

const PANELS: readonly Figure[] = [FIGURES.keepAliveRps, FIGURES.newConnectionRate, FIGURES.bodyThroughput,
  FIGURES.pacedP99, FIGURES.cpuPer10k, FIGURES.peakRss]

const PANEL = { width: 510, label: 165, bar: 225, row: 22, title: 30, pad: 14 }
const COLUMNS = 2
const HEAD = 64
const MARGIN = 12
/** About the width of a 12 px sans-serif character, for spacing the legend's labels. */
const LEGEND_CHAR_WIDTH = 6.5

export const escapeXml = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')

const textAt = (x: number, y: number, content: string, attrs = ''): string =>
  `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}"${attrs === '' ? '' : ` ${attrs}`}>${escapeXml(content)}</text>`

/**
 * The value at the full bar width: the largest proxy's, but at most CAP × haproxy's largest, so that one far-off
 * bar (the direct path, a pooling proxy's new-connection rate) does not flatten the comparison the chart is for.
 */
export const CAP = 3
export function fullScale (fig: Figure, results: readonly PathResult[]): number {
  const of = (paths: readonly PathResult[]): number => Math.max(0, ...paths.map(p => fig.value(p) ?? 0))
  const proxies = of(results.filter(p => p.proxy !== 'direct'))
  const haproxy = of(results.filter(p => p.proxy === 'haproxy'))
  return (haproxy > 0 ? Math.min(proxies, CAP * haproxy) : proxies) || of(results) || 1
}

function panel (fig: Figure, results: readonly PathResult[], x: number, y: number): string[] {
  const full = fullScale(fig, results)
  const scale = (v: number): number => PANEL.bar * Math.min(v, full) / full
  const x0 = x + PANEL.label
  const out = [textAt(x, y + 16, `${fig.label}, ${fig.unit} — ${fig.better} is better`, 'font-size="14" font-weight="bold"')]
  for (const [i, path] of results.entries()) {
    const top = y + PANEL.title + i * PANEL.row
    const mid = top + PANEL.row / 2 + 4
    const value = fig.value(path)
    out.push(textAt(x0 - 8, mid, path.name, 'text-anchor="end"'))
    if (i > 0 && path.mode !== results[i - 1].mode && results[i - 1].mode !== undefined) {
      out.push(`<line x1="${x}" y1="${top}" x2="${x0 + PANEL.bar}" y2="${top}" stroke="#ccc" stroke-dasharray="4 3"/>`)
    }
    if (value === undefined) {
      out.push(textAt(x0 + 4, mid, 'n/a (no proxy)', 'fill="#777"'))
      continue
    }
    const width = Math.max(scale(value), 1)
    out.push(`<rect x="${x0}" y="${top + 3}" width="${width.toFixed(1)}" height="${PANEL.row - 6}" fill="${COLOURS[path.proxy]}"/>`)
    // Off the scale: the bar ends in a break.
    if (value > full) out.push(`<path d="M${x0 + width - 12} ${top + 19} l6 -16 M${x0 + width - 6} ${top + 19} l6 -16" stroke="#fff" stroke-width="2"/>`)
    const ref = referenceOf(path, results)
    const refValue = ref === undefined || ref === path ? undefined : fig.value(ref)
    let labelX = x0 + width
    if (refValue !== undefined) {
      const rx = x0 + scale(refValue)
      out.push(`<line x1="${rx.toFixed(1)}" y1="${top}" x2="${rx.toFixed(1)}" y2="${top + PANEL.row}" stroke="#222" stroke-width="2"/>`)
      labelX = Math.max(labelX, rx)
    }
    const r = ratio(fig, path, results)
    const label = formatNumber(value, fig.digits) + (r === undefined || ref === path ? '' : ` (${formatRatio(r)})`)
    out.push(textAt(labelX + 5, mid, label))
  }
  return out
}

function legend (y: number): string[] {
  const out: string[] = []
  let x = MARGIN
  for (const [proxy, colour] of Object.entries(COLOURS)) {
    const label = proxy === 'direct' ? 'direct' : proxy === 'Node.js' ? 'bare Node.js' : proxy
    out.push(`<rect x="${x}" y="${y - 11}" width="14" height="14" fill="${colour}"/>`, textAt(x + 19, y, label))
    x += 19 + Math.ceil(label.length * LEGEND_CHAR_WIDTH) + 10
  }
  out.push(`<line x1="${x + 7}" y1="${y - 13}" x2="${x + 7}" y2="${y + 4}" stroke="#222" stroke-width="2"/>`,
    textAt(x + 16, y, `haproxy's value, same mode · (0.65×): ÷ haproxy's · broken bar: off the scale`))
  return out
}

export function renderChart (results: readonly PathResult[]): string {
  const panelHeight = PANEL.title + results.length * PANEL.row + PANEL.pad
  const rows = Math.ceil(PANELS.length / COLUMNS)
  const width = MARGIN * 2 + COLUMNS * PANEL.width
  const height = HEAD + rows * panelHeight + MARGIN
  const body = PANELS.flatMap((fig, i) =>
    panel(fig, results, MARGIN + (i % COLUMNS) * PANEL.width, HEAD + Math.floor(i / COLUMNS) * panelHeight))
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12" fill="#111">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    textAt(MARGIN, 24, 'Proxy benchmark: Chaperone sidecars vs haproxy, nginx and ghostunnel (two mTLS hops, loopback, medians)', 'font-size="16" font-weight="bold"'),
    ...legend(50),
    ...body,
    '</svg>',
    ''
  ].join('\n')
}
