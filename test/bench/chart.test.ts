import t from 'tap'
import { CAP, COLOURS, escapeXml, fullScale, renderChart } from '../../bench/proxy/chart'
import { FIGURES } from '../../bench/proxy/figures'
import { RESULTS } from './results-fixture'

/** Tags nest and close, attribute values are quoted, text holds no raw < or stray &: enough of XML for an SVG file. */
function wellFormed (xml: string): string[] {
  const problems: string[] = []
  const stack: string[] = []
  const tag = /<(\/?)([a-zA-Z][\w-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/y
  let text = ''
  for (let i = 0; i < xml.length;) {
    if (xml[i] !== '<') { text += xml[i++]; continue }
    tag.lastIndex = i
    const m = tag.exec(xml)
    if (m === null) { problems.push(`bad tag at ${i}: ${xml.slice(i, i + 40)}`); break }
    const [whole, closing, name, , selfClosing] = m
    if (closing === '/') {
      if (stack.pop() !== name) problems.push(`</${name}> closes nothing open`)
    } else if (selfClosing === '') stack.push(name)
    i += whole.length
  }
  if (/&(?!amp;|lt;|gt;|quot;)/.test(text)) problems.push('a raw & in text')
  if (stack.length > 0) problems.push(`unclosed: ${stack.join(', ')}`)
  return problems
}

void t.test('chart – well-formed SVG, white background, one root', async t => {
  const svg = renderChart(RESULTS)
  t.same(wellFormed(svg), [])
  t.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="\d+" height="\d+" viewBox="0 0 \d+ \d+"/)
  t.match(svg, /<\/svg>\n$/)
  t.same(wellFormed('<svg><text>a & b</text></svg>'), ['a raw & in text'], 'the checker itself catches a raw &')
  t.same(wellFormed('<svg><g></svg>'), ['</svg> closes nothing open', 'unclosed: svg'], 'and a tag left open')
})

void t.test('chart – six panels, every path in each, every value and ratio written', async t => {
  const svg = renderChart(RESULTS)
  const texts = [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map(m => m[1])
  for (const title of ['keep-alive, requests/s — higher is better', 'one request per connection, connections/s — higher is better',
    '1 MiB body, MiB/s — higher is better', 'p99 at 1,000 requests/s, ms — lower is better',
    'CPU per 10,000 keep-alive requests, s — lower is better', 'peak RSS, both hops, MB — lower is better']) {
    t.ok(texts.includes(title), title)
  }
  for (const path of RESULTS) t.equal(texts.filter(x => x === path.name).length, 6, `${path.name} in every panel`)
  for (const label of ['100,000', '20,000 (0.50×)', '40,000', '30,000 (0.75×)', '5,000 (0.20×)', '30,000 (1.20×)', // keep-alive
    '500 (0.50×)', '400 (0.40×)', '15,000 (30.00×)', '250 (0.50×)', '4.00 (2.00×)', '10.00 (4.00×)', '0.50 (2.00×)', '2.00 (5.00×)',
    '98.0 (2.23×)', '26.0 (0.59×)', '135.0 (3.00×)']) {
    t.ok(texts.includes(label), `value label ${label}`)
  }
  t.equal(texts.filter(x => x === 'n/a (no proxy)').length, 2, 'direct has no CPU or memory of a proxy')
})

void t.test('chart – bars to scale, coloured by proxy, haproxy marked on the others', async t => {
  const svg = renderChart(RESULTS)
  // Bars have widths with a decimal (the legend's swatches have none).
  const bars = [...svg.matchAll(/<rect x="[\d.]+" y="[\d.]+" width="(\d+\.\d)" height="\d+" fill="(#\w+)"\/>/g)].map(m => ({ width: Number(m[1]), fill: m[2] }))
  // The first panel (keep-alive requests/s): the largest proxy (haproxy tcp, 40,000) fills the width, direct
  // (100,000) is cut there, the others are in proportion.
  const first = bars.slice(0, 7)
  t.same(first.map(b => b.fill), [COLOURS.direct, COLOURS.Chaperone, COLOURS.haproxy, COLOURS.ghostunnel, COLOURS.Chaperone, COLOURS.haproxy, COLOURS.nginx])
  t.same(first.map(b => Math.round(b.width / first[2].width * 1000) / 10), [100, 50, 100, 75, 12.5, 62.5, 75], 'widths to 0.1 px')
  // Cut bars end in a break: direct in the three rate panels, nginx's new connections (30× haproxy's, over the cap),
  // Chaperone HTTP's p99 (4× the larger haproxy p99) and CPU (5×).
  t.equal([...svg.matchAll(/<path d="[^"]+" stroke="#fff"/g)].length, 6)
  // A dark line at haproxy's value on each Chaperone, ghostunnel and nginx row of each panel (4 × 6), and one in the legend.
  t.equal([...svg.matchAll(/<line [^>]*stroke="#222"/g)].length, 25)
})

void t.test('chart – the full width is the largest proxy, but no more than CAP × haproxy', async t => {
  t.equal(CAP, 3)
  t.equal(fullScale(FIGURES.keepAliveRps, RESULTS), 40_000, 'direct does not set the scale')
  t.equal(fullScale(FIGURES.newConnectionRate, RESULTS), 3000, 'nginx\'s 15,000 is cut at 3 × 1,000')
  t.equal(fullScale(FIGURES.peakRss, RESULTS), 135, 'within 3 × 45')
  t.equal(fullScale(FIGURES.keepAliveRps, RESULTS.filter(p => p.proxy !== 'haproxy')), 30_000, 'without haproxy, the largest proxy')
  t.equal(fullScale(FIGURES.keepAliveRps, RESULTS.slice(0, 1)), 100_000, 'direct alone')
})

void t.test('chart – names are escaped', async t => {
  t.equal(escapeXml('a <b> & "c"'), 'a &lt;b&gt; &amp; &quot;c&quot;')
  const svg = renderChart([{ ...RESULTS[1], name: 'Chaperone <dev> & co' }, RESULTS[2]])
  t.match(svg, 'Chaperone &lt;dev&gt; &amp; co')
  t.same(wellFormed(svg), [])
})

void t.test('chart – the legend names every proxy, and fits the chart\'s width', async t => {
  const svg = renderChart(RESULTS)
  const width = Number(/width="(\d+)"/.exec(svg)?.[1])
  for (const proxy of ['Chaperone', 'haproxy', 'nginx', 'ghostunnel', 'bare Node.js', 'direct']) t.match(svg, `>${proxy}</text>`)
  // The legend's last text explains haproxy's marker; at about 6.5 px a character, it ends inside the chart.
  const explained = /<text x="([\d.]+)" y="50\.0">(haproxy's value[^<]*)</.exec(svg)
  t.ok(explained !== null && Number(explained[1]) + explained[2].length * 6.5 < width, 'the legend ends inside the chart')
})
