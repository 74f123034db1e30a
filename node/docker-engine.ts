/**
 * The Docker Engine API on its Unix socket (node:http with socketPath, no client library): JSON answers to GETs, and
 * the `/events` stream, one JSON object a line. Every exchange has a deadline (a whole GET, or an event stream's
 * first answer), and answers are capped, so a stuck or confused daemon cannot stall discovery or fill memory.
 * Failures are DockerErrors saying what to check.
 */
import { request } from 'node:http'
import type { ClientRequest, IncomingMessage } from 'node:http'
import { DockerError, unreachable } from './docker-errors'

const DEFAULT_TIMEOUT_MS = 5000
/** A list of a few hundred containers is a few MiB at most. */
const MAX_BODY_BYTES = 16 * 1024 * 1024
/** One event is well under a KiB; a line longer than this is not an event. */
const MAX_EVENT_BYTES = 1024 * 1024

/** An event as the Engine sends it (`GET /events`); only what discovery reads. */
export interface DockerEvent {
  readonly Type?: string
  readonly Action?: string
  readonly Actor?: { readonly ID?: string, readonly Attributes?: Readonly<Record<string, string>> }
}

export interface DockerEventHandlers {
  /** The Engine accepted the subscription: every event from now on comes. */
  opened: () => void
  event: (event: DockerEvent) => void
  /** The stream failed or ended (dockerd stopped); called once, never after the stream was closed by its owner. */
  ended: (error: DockerError) => void
}

/** `path?filters=…` as the Engine reads filters: a JSON object of string lists. */
export function withFilters (path: string, filters: Readonly<Record<string, readonly string[]>>): string {
  return `${path}?filters=${encodeURIComponent(JSON.stringify(filters))}`
}

/** The Engine's `{"message": …}` from an error answer, or the start of the body. */
function responseError (path: string, status: number | undefined, body: string): DockerError {
  let said = body.slice(0, 300).trim()
  try {
    const message = (JSON.parse(body) as { message?: unknown }).message
    if (typeof message === 'string') said = message
  } catch {
    // not JSON: the body's start is what it said
  }
  return new DockerError('ERR_NODE_DOCKER_RESPONSE', `the Docker Engine answered GET ${path.split('?')[0]} with HTTP ${status ?? '?'}: ${said}`, { status })
}

/** Reads a whole answer, up to `max` bytes; destroys the request beyond that. */
function readBody (req: ClientRequest, res: IncomingMessage, done: (body: string) => void): void {
  const chunks: Buffer[] = []
  let length = 0
  res.on('data', (chunk: Buffer) => {
    length += chunk.length
    if (length > MAX_BODY_BYTES) req.destroy(new DockerError('ERR_NODE_DOCKER_RESPONSE', `the Docker Engine's answer is larger than ${MAX_BODY_BYTES} bytes`))
    else chunks.push(chunk)
  })
  res.on('end', () => { done(Buffer.concat(chunks).toString('utf8')) })
}

export class DockerEngine {
  readonly socketPath: string
  readonly #timeoutMs: number

  constructor (socketPath: string, timeoutMs = DEFAULT_TIMEOUT_MS) {
    this.socketPath = socketPath
    this.#timeoutMs = timeoutMs
  }

  /** GET `path`; the parsed JSON of a 200 answer. */
  async getJson (path: string): Promise<unknown> {
    return await new Promise((resolve, reject) => {
      const req = this.#request(path, reject, res => {
        readBody(req, res, body => {
          clearTimeout(deadline)
          if (res.statusCode !== 200) return reject(responseError(path, res.statusCode, body))
          try {
            resolve(JSON.parse(body))
          } catch (err) {
            reject(new DockerError('ERR_NODE_DOCKER_RESPONSE', `the Docker Engine's answer to GET ${path.split('?')[0]} is not JSON: ${(err as Error).message}`))
          }
        })
      })
      // A deadline for the whole exchange, not an idle timeout: a daemon that trickles bytes must not stall discovery.
      const deadline = this.#deadline(req, `GET ${path.split('?')[0]}`)
    })
  }

  /** Follows `/events` with these filters; returns what closes the stream (after which no handler is called). */
  events (filters: Readonly<Record<string, readonly string[]>>, handlers: DockerEventHandlers): () => void {
    let closed = false
    const end = (error: DockerError): void => {
      if (closed) return
      closed = true
      clearTimeout(deadline)
      req.destroy()
      handlers.ended(error)
    }
    const path = withFilters('/events', filters)
    const req = this.#request(path, end, res => {
      clearTimeout(deadline)
      if (res.statusCode !== 200) {
        readBody(req, res, body => { end(responseError(path, res.statusCode, body)) })
        return
      }
      handlers.opened()
      let pending = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        pending += chunk
        for (let newline = pending.indexOf('\n'); newline >= 0 && !closed; newline = pending.indexOf('\n')) {
          const line = pending.slice(0, newline).trim()
          pending = pending.slice(newline + 1)
          if (line === '') continue
          let event: DockerEvent
          try {
            event = JSON.parse(line) as DockerEvent
          } catch {
            return end(new DockerError('ERR_NODE_DOCKER_RESPONSE', `an event from the Docker Engine is not JSON: ${line.slice(0, 100)}`))
          }
          handlers.event(event)
        }
        if (pending.length > MAX_EVENT_BYTES) end(new DockerError('ERR_NODE_DOCKER_RESPONSE', `an event from the Docker Engine is longer than ${MAX_EVENT_BYTES} bytes`))
      })
      res.on('end', () => {
        end(pending.trim() !== ''
          ? new DockerError('ERR_NODE_DOCKER_RESPONSE', `an event from the Docker Engine is not JSON: ${pending.slice(0, 100)}`)
          : new DockerError('ERR_NODE_DOCKER_UNREACHABLE', `the Docker Engine at ${this.socketPath} ended the event stream (dockerd stopped or restarted?)`))
      })
    })
    const deadline = this.#deadline(req, 'GET /events')
    return () => {
      closed = true
      clearTimeout(deadline)
      req.destroy()
    }
  }

  /** Starts a GET; socket failures go to `failed` as DockerErrors. */
  #request (path: string, failed: (error: DockerError) => void, answered: (res: IncomingMessage) => void): ClientRequest {
    const req = request({ socketPath: this.socketPath, path, headers: { host: 'docker' } }, res => {
      res.on('error', (err: NodeJS.ErrnoException) => { failed(err instanceof DockerError ? err : unreachable(this.socketPath, err)) })
      answered(res)
    })
    req.on('error', (err: NodeJS.ErrnoException) => { failed(err instanceof DockerError ? err : unreachable(this.socketPath, err)) })
    req.end()
    return req
  }

  #deadline (req: ClientRequest, what: string): NodeJS.Timeout {
    const timer = setTimeout(() => {
      req.destroy(new DockerError('ERR_NODE_DOCKER_TIMEOUT', `the Docker Engine at ${this.socketPath} did not answer ${what} within ${this.#timeoutMs} ms: is dockerd overloaded or stuck?`))
    }, this.#timeoutMs)
    req.on('close', () => { clearTimeout(timer) })
    return timer
  }
}
