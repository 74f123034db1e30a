import t from 'tap'
import { heapClasses, perAppGrowth } from '../../bench/node/heap-classes'

/** A heap snapshot in V8's format: nodes as flat arrays of (type, name, id, self_size, edge_count). */
function snapshot (nodes: Array<[string, string, number]>): Parameters<typeof heapClasses>[0] {
  const types = ['hidden', 'array', 'string', 'object', 'code', 'closure', 'native']
  const strings: string[] = []
  const index = (s: string): number => strings.includes(s) ? strings.indexOf(s) : strings.push(s) - 1
  return {
    snapshot: { meta: { node_fields: ['type', 'name', 'id', 'self_size', 'edge_count'], node_types: [types, 'string', 'number', 'number', 'number'] } },
    nodes: nodes.flatMap(([type, name, size], id) => [types.indexOf(type), index(name), id, size, 0]),
    strings
  }
}

void t.test('heap classes – objects by constructor, native and hidden by name, the rest by kind', async t => {
  const classes = heapClasses(snapshot([
    ['object', 'SecureContext', 100], ['object', 'SecureContext', 50], ['native', 'NodeBIO::Buffer', 30],
    ['string', 'hello', 20], ['string', 'world', 22], ['hidden', 'system / Context', 7], ['closure', 'onData', 64]
  ]))
  t.same(classes.get('SecureContext'), { bytes: 150, count: 2 })
  t.same(classes.get('native: NodeBIO::Buffer'), { bytes: 30, count: 1 })
  t.same(classes.get('hidden: system / Context'), { bytes: 7, count: 1 })
  t.same(classes.get('(string)'), { bytes: 42, count: 2 }, 'strings summed whatever they say')
  t.same(classes.get('(closure)'), { bytes: 64, count: 1 })
})

void t.test('heap classes – refuses what is not a heap snapshot', async t => {
  t.throws(() => heapClasses({ snapshot: { meta: { node_fields: ['id'], node_types: [[]] } }, nodes: [], strings: [] }), /not a V8 heap snapshot/)
})

void t.test('heap classes – growth per app between two sizes, largest first, a class new or gone included', async t => {
  const fewer = heapClasses(snapshot([['object', 'Counter', 1000], ['object', 'Gone', 400], ['string', 's', 100]]))
  const more = heapClasses(snapshot([['object', 'Counter', 5000], ['object', 'Counter', 1000], ['object', 'SecureContext', 800], ['string', 's', 100]]))
  const growth = perAppGrowth({ apps: 10, classes: fewer }, { apps: 50, classes: more }, 3)
  t.same(growth, [
    { name: 'Counter', bytesPerApp: 125, countPerApp: 1 / 40 },
    { name: 'SecureContext', bytesPerApp: 20, countPerApp: 1 / 40 },
    { name: '(string)', bytesPerApp: 0, countPerApp: 0 }
  ])
  t.equal(perAppGrowth({ apps: 10, classes: fewer }, { apps: 50, classes: more }, 10).at(-1)?.name, 'Gone', 'a class that shrank comes last')
  t.throws(() => perAppGrowth({ apps: 50, classes: more }, { apps: 10, classes: fewer }, 3), /more apps/)
})
