import t from 'tap'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'

// Metric names and log events are public API: every one the sidecar (and its policy watcher) can emit is in the
// README's tables, so dashboards and alerts can be written from the README alone.

const root = join(__dirname, '..', '..')

function sources (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap(entry => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return sources(path)
    return entry.name.endsWith('.ts') ? [path] : []
  })
}

const code = [...sources(join(root, 'proxy')), join(root, 'policy', 'watch.ts')].map(file => readFileSync(file, 'utf8')).join('\n')
/** The table that follows `title` in the README. */
function table (title: string): string {
  const after = (readFileSync(join(root, 'README.md'), 'utf8').split(title)[1] ?? '').split('\n')
  const start = after.findIndex(line => line.startsWith('|'))
  const end = after.findIndex((line, n) => n > start && !line.startsWith('|'))
  return start === -1 ? '' : after.slice(start, end).join('\n')
}

void t.test('docs – every sidecar metric is in the README\'s metrics table', async t => {
  const names = [...new Set([...code.matchAll(/name: '(chaperone_[a-z_]+)'/g)].map(match => match[1]))]
  t.ok(names.length >= 10, `${names.length} metrics in the source`)
  const metrics = table('**Metrics** (names and labels are public API):')
  for (const name of names) t.match(metrics, `| \`${name}\` |`, name)
})

void t.test('docs – every log event of the sidecar is in the README\'s log fields table', async t => {
  const events = [...new Set([...code.matchAll(/event: '([a-z_]+)'/g)].map(match => match[1]))]
  t.ok(events.length >= 20, `${events.length} events in the source`)
  const logs = table('**Log fields** (pino JSON on stderr; `event` names the line):')
  for (const event of events) t.match(logs, `\`${event}\``, event)
})
