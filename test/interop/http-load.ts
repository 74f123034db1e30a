/**
 * Steady HTTP/1.1 load for the interop suite: a few clients, each sending one GET at a time to its port and pausing
 * between requests, over one keep-alive connection or over a new connection per request. Every answer is checked:
 * an error, a status other than 200, no answer in time or a failed check is a failure, kept with its time and
 * reason so a test can say exactly which request failed when. Not a test itself.
 */
import { Agent, request } from 'node:http'

export interface LoadClient {
  readonly name: string
  readonly port: number
  /** One keep-alive connection for all its requests; else a new connection (and `Connection: close`) per request. */
  readonly keepAlive: boolean
}

export interface LoadOptions {
  readonly path: string
  /** Pause after each answer, per client. */
  readonly pauseMs: number
  /** A request unanswered this long is a failure; 10 s by default. */
  readonly timeoutMs?: number
  /** Checks a 200 answer's body: a reason when it is wrong, else undefined. */
  readonly check: (body: string) => string | undefined
}

export interface LoadFailure { readonly at: Date, readonly client: string, readonly reason: string }

export interface LoadCounts { readonly ok: number, readonly failed: number }

export interface Load {
  /** Answers so far, in total and by client. */
  counts: () => LoadCounts & { readonly byClient: Record<string, LoadCounts> }
  readonly failures: readonly LoadFailure[]
  /** Stops sending, waits for the requests in flight, and closes the keep-alive connections. */
  stop: () => Promise<void>
}

/** Starts every client at once; they run until `stop()`. */
export function startLoad (clients: readonly LoadClient[], options: LoadOptions): Load {
  const failures: LoadFailure[] = []
  const byClient: Record<string, { ok: number, failed: number }> = {}
  let stopped = false
  const loops = clients.map(async client => {
    const counts = byClient[client.name] = { ok: 0, failed: 0 }
    const agent = client.keepAlive ? new Agent({ keepAlive: true, maxSockets: 1 }) : undefined
    while (!stopped) {
      const reason = await send(client, agent, options)
      if (reason === undefined) counts.ok++
      else {
        counts.failed++
        failures.push({ at: new Date(), client: client.name, reason })
      }
      await new Promise(resolve => setTimeout(resolve, options.pauseMs))
    }
    agent?.destroy()
  })
  return {
    counts: () => {
      const all = Object.values(byClient)
      return { ok: all.reduce((n, c) => n + c.ok, 0), failed: all.reduce((n, c) => n + c.failed, 0), byClient: structuredClone(byClient) }
    },
    failures,
    stop: async () => {
      stopped = true
      await Promise.all(loops)
    }
  }
}

/** One request: undefined when it was answered 200 and the body passed the check, else why not. */
async function send (client: LoadClient, agent: Agent | undefined, options: LoadOptions): Promise<string | undefined> {
  const timeoutMs = options.timeoutMs ?? 10_000
  return await new Promise(resolve => {
    const req = request({
      host: '127.0.0.1',
      port: client.port,
      path: options.path,
      agent: agent ?? false,
      headers: client.keepAlive ? {} : { connection: 'close' },
      timeout: timeoutMs
    }, res => {
      let body = ''
      res.setEncoding('utf8').on('data', (chunk: string) => { body += chunk })
      res.on('error', err => { resolve(`response: ${err.message}`) })
      res.on('end', () => {
        if (res.statusCode !== 200) resolve(`status ${res.statusCode ?? '?'}: ${body.slice(0, 300)}`)
        else {
          try {
            resolve(options.check(body))
          } catch (err) {
            resolve(`unreadable answer (${(err as Error).message}): ${body.slice(0, 300)}`)
          }
        }
      })
    })
    req.on('timeout', () => { req.destroy(new Error(`no answer in ${timeoutMs} ms`)) })
    req.on('error', err => { resolve(`request: ${err.message}`) })
    req.end()
  })
}
