import t from 'tap'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'

const root = join(__dirname, '..', '..')
const SOURCE_FOLDERS = ['spiffe', 'policy', 'agent', 'proxy', 'node', 'cli']

function sourceFiles (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap(entry => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return sourceFiles(path)
    return entry.name.endsWith('.ts') ? [path] : []
  })
}

/** Every quoted ERR_… literal in the product's source. */
function codesInSource (): Set<string> {
  const codes = new Set<string>()
  for (const folder of SOURCE_FOLDERS) {
    for (const file of sourceFiles(join(root, folder))) {
      for (const match of readFileSync(file, 'utf8').matchAll(/'(ERR_[A-Z0-9_]+)'/g)) codes.add(match[1])
    }
  }
  return codes
}

/** Codes in the first column of the README's "Error codes" table. */
function codesInReadme (): Set<string> {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const section = readme.split(/^## Error codes$/m)[1]?.split(/^## /m)[0] ?? ''
  return new Set([...section.matchAll(/^\| `(ERR_[A-Z0-9_]+)` \|/gm)].map(match => match[1]))
}

void t.test('docs – every error code in the source is in the README table, and nothing more', async t => {
  const source = codesInSource()
  const readme = codesInReadme()
  t.ok(source.size >= 30, `found ${source.size} codes in the source`)
  t.same([...source].filter(code => !readme.has(code)).sort(), [], 'codes missing from the README table')
  t.same([...readme].filter(code => !source.has(code)).sort(), [], 'README codes no source raises')
})
