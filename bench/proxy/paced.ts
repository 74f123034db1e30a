/**
 * A paced HTTP/1.1 load client: requests on a fixed schedule (`rate` per second) over a few keep-alive
 * connections, each latency counted from the request's intended send time, not from when a connection was free to
 * send it. A stall therefore shows as the latency of every request it delayed (no coordinated omission), which
 * closed-loop tools such as wrk hide. Run as its own process, so the benchmark's event loop cannot delay it:
 * `node paced.js <url> <rate> <seconds> <connections>` prints a `PacedResult` as JSON.
 */
import { execFile } from 'node:child_process'
import { connect } from 'node:net'
import type { Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import { promisify } from 'node:util'
import { ResponseParser } from './http-response'
import type { Response } from './http-response'
import { summarize } from './stats'
import type { LatencySummary } from './stats'

export interface PacedOptions { readonly rate: number, readonly seconds: number, readonly connections: number }

export interface PacedResult extends LatencySummary {
  readonly sent: number
  /** How late the client itself sent requests (its timer and event loop), p99: the part of the latency that is not the server's. */
  readonly sendLagP99Ms: number
  /** Non-2xx/3xx responses, failed connections and requests still unanswered at the deadline. */
  readonly errors: number
}

/** Grace after the last intended send for the last responses, before they count as errors. */
const DRAIN_MS = 5000

/** One keep-alive connection: at most one request in flight (no pipelining), its intended send time kept. */
class Connection {
  private socket: Socket
  private parser = new ResponseParser()
  private closed = false
  inFlight: number | undefined

  constructor (private readonly host: string, private readonly port: number, private readonly request: Buffer,
    private readonly onResponse: (intended: number, response: Response) => void, private readonly onFailure: (intended: number) => void) {
    this.socket = this.open()
  }

  private open (): Socket {
    const socket = connect(this.port, this.host)
    socket.setNoDelay(true)
    socket.on('data', chunk => {
      for (const response of this.parser.feed(chunk)) {
        const intended = this.inFlight as number
        this.inFlight = undefined
        this.onResponse(intended, response)
      }
    })
    // A closed or failed connection loses its request (an error) and is opened again for the next ones.
    socket.on('error', () => {})
    socket.on('close', () => {
      if (this.closed) return
      const lost = this.inFlight
      this.inFlight = undefined
      if (lost !== undefined) this.onFailure(lost)
      this.parser = new ResponseParser()
      this.socket = this.open()
    })
    return socket
  }

  send (intended: number): void {
    this.inFlight = intended
    this.socket.write(this.request)
  }

  close (): void {
    this.closed = true
    this.socket.destroy()
  }
}

export async function pace (url: string, options: PacedOptions): Promise<PacedResult> {
  const { hostname, port, pathname, search } = new URL(url)
  const request = Buffer.from(`GET ${pathname}${search} HTTP/1.1\r\nHost: ${hostname}:${port}\r\n\r\n`)
  const total = Math.round(options.rate * options.seconds)
  const interval = 1000 / options.rate
  const latencies: number[] = []
  const lags: number[] = []
  const queue: number[] = []
  let [errors, answered, start] = [0, 0, Number.POSITIVE_INFINITY]
  let finish: () => void = () => {}
  const finished = new Promise<void>(resolve => { finish = resolve })
  const pump = (): void => {
    for (const connection of connections) {
      if (queue.length === 0) return
      if (connection.inFlight !== undefined) continue
      const intended = queue.shift() as number
      lags.push(performance.now() - intended)
      connection.send(intended)
    }
  }
  const settle = (): void => {
    answered++
    if (answered === total) finish()
    else pump()
  }
  // Warm-up requests (sent before the schedule starts) are not counted.
  const onResponse = (intended: number, response: Response): void => {
    if (intended < start) return
    if (response.status < 200 || response.status >= 400) errors++
    else latencies.push(performance.now() - intended)
    settle()
  }
  const onFailure = (intended: number): void => {
    if (intended < start) return
    errors++
    settle()
  }
  const connections = Array.from({ length: options.connections }, () => new Connection(hostname, Number(port), request, onResponse, onFailure))
  try {
    await warmUp(connections)
    start = performance.now()
    let issued = 0
    const tick = (): void => {
      const now = performance.now()
      for (; issued < total && start + issued * interval <= now; issued++) queue.push(start + issued * interval)
      pump()
      if (issued < total) setTimeout(tick, Math.max(0, start + issued * interval - performance.now()))
    }
    tick()
    const deadline = setTimeout(finish, options.seconds * 1000 + DRAIN_MS)
    await finished
    clearTimeout(deadline)
    errors += total - answered
  } finally {
    for (const connection of connections) connection.close()
  }
  if (latencies.length === 0) throw new Error(`no successful response from ${url} (${errors} errors)`)
  return { sent: total, errors, sendLagP99Ms: summarize(lags).p99Ms, ...summarize(latencies) }
}

/** One request per connection before the schedule: connections (and a TCP proxy's upstream handshakes) are up. */
async function warmUp (connections: Connection[]): Promise<void> {
  for (const connection of connections) connection.send(Number.NEGATIVE_INFINITY)
  const deadline = Date.now() + 10_000
  while (connections.some(c => c.inFlight !== undefined)) {
    if (Date.now() > deadline) throw new Error('the paced client\'s connections got no answer in 10 s')
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

const run = promisify(execFile)

/** Runs the client in a child process and reads its JSON; `launcher` runs it elsewhere (as in runWrk). */
export async function runPaced (url: string, options: PacedOptions, launcher: readonly string[] = []): Promise<PacedResult> {
  const [command, ...args] = [...launcher, process.execPath, __filename, url, String(options.rate), String(options.seconds), String(options.connections)]
  const { stdout } = await run(command, args)
  return JSON.parse(stdout) as PacedResult
}

if (require.main === module) {
  const [url, rate, seconds, connections] = process.argv.slice(2)
  const options = { rate: Number(rate), seconds: Number(seconds), connections: Number(connections) }
  if (url === undefined || !Object.values(options).every(n => n > 0)) {
    console.error('usage: node paced.js <url> <requests per second> <seconds> <connections>')
    process.exit(2)
  }
  pace(url, options).then(result => { process.stdout.write(JSON.stringify(result) + '\n') }, (err: unknown) => {
    console.error(err instanceof Error ? err.message : err)
    process.exitCode = 1
  })
}
