import t from 'tap'
import { Agent, request } from 'node:http'
import { BLOB, startHttpStand } from '../helpers/http-stand'
import type { HttpStand } from '../helpers/http-stand'
import { requestBytes } from '../helpers/raw-http'

// HTTP/1.1 connection management through a sidecar pair (the client's outbound HTTP listener, mutual TLS, the
// server's inbound HTTP listener, the app), black box: keep-alive with pooled upstream connections, Connection:
// close and HTTP/1.0, an app that closes idle connections, an app that is down, a big request the policy denies,
// and many connections at once.

let stand: HttpStand
t.before(async () => { stand = await startHttpStand() })
t.teardown(async () => { await stand.close() })


const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

void t.test('http connections – 50 requests in turn on one kept-alive connection; the app sees a few pooled connections, not 50', async t => {
  const connection = await stand.open(t, 'app')
  const before = stand.app.seen.length
  for (let n = 0; n < 50; n++) {
    connection.write(requestBytes('GET', `/keep/${n}`))
    const response = await connection.response()
    if (response.status !== 200 || response.body.toString() !== `/keep/${n}`) t.fail(`request ${n}: ${response.line} ${response.body.toString()}`)
  }
  t.notOk(connection.ended, 'still open')
  const ports = new Set(stand.app.seen.slice(before).map(seen => seen.remotePort))
  t.equal(stand.app.seen.length - before, 50)
  t.ok(ports.size <= 5, `the app saw ${ports.size} connection(s)`)
})

void t.test('http connections – Connection: close from the client: the response, then the sidecar closes the connection', async t => {
  const connection = await stand.open(t, 'app')
  connection.write(requestBytes('GET', '/closing', [['Connection', 'close']]))
  const response = await connection.response()
  t.equal(response.status, 200)
  t.equal(response.body.toString(), '/closing')
  t.equal(response.headers.connection, 'close', 'the response says so (the app\'s own said keep-alive)')
  t.ok(await connection.endsWithin(2000), 'closed')
  t.equal(connection.buffer.length, 0, 'nothing after the response')
})

void t.test('http connections – HTTP/1.0 without keep-alive: a response, then the connection closes', async t => {
  for (const backend of ['app', 'scripted'] as const) {
    const connection = await stand.open(t, backend)
    connection.write(requestBytes('GET', '/old', [], undefined, 'HTTP/1.0'))
    const response = await connection.response()
    t.match(response.line, /^HTTP\/1\.[01] 200 /, backend)
    t.equal(response.body.toString(), '/old', `${backend}: the body (${response.framing})`)
    t.not(response.framing, 'chunked', 'no chunked coding for an HTTP/1.0 client')
    t.ok(await connection.endsWithin(2000), `${backend}: closed`)
  }
})

void t.test('http connections – the app closes idle connections after 200 ms: after a pause, the kept-alive client is still served', async t => {
  const connection = await stand.open(t, 'idle')
  const before = stand.idle.seen.length
  for (let n = 0; n < 3; n++) {
    if (n > 0) await sleep(500)
    connection.write(requestBytes('GET', `/idle/${n}`))
    const response = await connection.response()
    t.equal(response.status, 200, `after ${n === 0 ? 'no' : 'a 500 ms'} pause`)
    t.equal(response.body.toString(), `/idle/${n}`)
  }
  t.equal(new Set(stand.idle.seen.slice(before).map(seen => seen.remotePort)).size, 3, 'each after a pause came on a new app connection: the app had closed the last')
})

void t.test('http connections – the app is down: 502 with a JSON error, and the connection serves the next request', async t => {
  const connection = await stand.open(t, 'down')
  for (let n = 0; n < 2; n++) {
    connection.write(requestBytes('GET', `/down/${n}`))
    const response = await connection.response()
    t.equal(response.status, 502)
    t.match(response.headers['content-type'], /^application\/json/)
    t.match(JSON.parse(response.body.toString()), { error: String })
  }
})

void t.test('http connections – a 1 MiB POST the policy denies gets 403 within 2 s; the connection is then usable or closed', async t => {
  const connection = await stand.open(t, 'app')
  const before = stand.app.seen.length
  const started = Date.now()
  connection.write(requestBytes('POST', '/denied/upload', [['Content-Type', 'application/octet-stream']], BLOB))
  const response = await connection.response(false, 2000)
  t.ok(Date.now() - started < 2000, `in ${Date.now() - started} ms`)
  t.equal(response.status, 403)
  t.match(JSON.parse(response.body.toString()), { error: 'denied by policy', rule: 'no-denied-posts' })
  connection.write(requestBytes('GET', '/after-denied'))
  const next = await connection.response().catch(() => undefined)
  t.ok(next === undefined ? connection.ended : next.body.toString() === '/after-denied', next === undefined ? 'closed' : 'the next request is served')
  t.notOk(stand.app.seen.slice(before).some(seen => seen.url.startsWith('/denied')), 'the app never saw it')
})

void t.test('http connections – 100 requests over 20 parallel connections all get their own responses', async t => {
  const agent = new Agent({ keepAlive: true, maxSockets: 20 })
  t.teardown(() => { agent.destroy() })
  const get = async (path: string): Promise<{ status: number, body: string }> => await new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: stand.port('app'), path, agent, timeout: 5000 }, res => {
      let body = ''
      res.setEncoding('utf8').on('data', (chunk: string) => { body += chunk }).on('end', () => { resolve({ status: res.statusCode ?? 0, body }) })
    })
    req.on('timeout', () => { req.destroy(new Error(`${path}: timed out`)) }).on('error', reject).end()
  })
  const paths = Array.from({ length: 100 }, (_v, n) => `/parallel/${n}?delay=${n % 7}`)
  const responses = await Promise.all(paths.map(get))
  t.same(responses.filter((response, n) => response.status !== 200 || response.body !== paths[n]), [], 'every response is its own request\'s')
  const raw = await Promise.all(Array.from({ length: 20 }, async (_v, c) => {
    const connection = await stand.open(t, 'app')
    const targets = Array.from({ length: 5 }, (_w, n) => `/raw/${c}/${n}`)
    connection.write(Buffer.concat(targets.map(target => requestBytes('GET', target))))
    const bodies = []
    for (let n = 0; n < targets.length; n++) bodies.push((await connection.response()).body.toString())
    return bodies.join(' ') === targets.join(' ')
  }))
  t.equal(raw.filter(ok => ok).length, 20, 'and 20 raw connections with 5 pipelined requests each')
})

void t.test('http connections – a client that pipelines far ahead (over 128 KiB of requests in one write) gets every response, in order', async t => {
  const connection = await stand.open(t, 'app')
  const count = 3000
  const bytes = Buffer.concat(Array.from({ length: count }, (_, n) => requestBytes('GET', `/far/${n}`)))
  t.ok(bytes.length > 128 * 1024, `${bytes.length} bytes: more than the sidecar buffers before it stops reading`)
  connection.write(bytes)
  let inOrder = 0
  for (let n = 0; n < count; n++) if ((await connection.response()).body.toString() === `/far/${n}`) inOrder++
  t.equal(inOrder, count)
})
