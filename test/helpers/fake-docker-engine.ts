/**
 * A stand-in Docker Engine on a Unix socket, for Docker discovery's tests: it answers the four requests discovery
 * makes (a network's inspection, the filtered container list, a container's inspection, the event stream) in the
 * Engine API's shapes, from containers the test sets, and can stop answering, hang, or go away and come back as
 * dockerd does. Not a test itself.
 */
import { createServer } from 'node:http'
import type { Server, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { once } from 'node:events'
import { rmSync } from 'node:fs'

export interface FakeContainer {
  readonly id: string
  readonly name: string
  readonly pid: number
  readonly labels?: Readonly<Record<string, string>>
}

export interface FakeNetwork { readonly id: string, readonly name: string, readonly subnet: string, readonly driver?: string }

type Filters = Record<string, string[] | undefined>

function labelled (container: FakeContainer, filter: string): boolean {
  const [key, ...value] = filter.split('=')
  const has = container.labels?.[key]
  return has !== undefined && (value.length === 0 || has === value.join('='))
}

export class FakeDockerEngine {
  readonly socket: string
  network: FakeNetwork | undefined
  readonly containers = new Map<string, FakeContainer>()
  /** Every path asked, in order. */
  readonly requests: string[] = []
  /** While true, GETs other than /events get no answer. */
  hang = false
  #server: Server
  readonly #streams = new Set<ServerResponse>()
  readonly #sockets = new Set<Socket>()

  private constructor (socket: string) {
    this.socket = socket
    this.#server = this.#makeServer()
  }

  static async start (socket: string, network?: FakeNetwork): Promise<FakeDockerEngine> {
    const engine = new FakeDockerEngine(socket)
    engine.network = network
    await engine.#listen()
    return engine
  }

  add (container: FakeContainer): void { this.containers.set(container.id, container) }

  /** Sends an event to every open event stream. */
  emit (type: 'container' | 'network', action: string, actor: { id: string, attributes?: Record<string, string> }): void {
    const event = { Type: type, Action: action, Actor: { ID: actor.id, Attributes: actor.attributes ?? {} }, scope: 'local', time: Math.floor(Date.now() / 1000), timeNano: Date.now() * 1e6 }
    for (const stream of this.#streams) stream.write(`${JSON.stringify(event)}\n`)
  }

  get openStreams (): number { return this.#streams.size }

  /** dockerd stops: every connection cut, the socket gone. */
  async stop (): Promise<void> {
    for (const socket of this.#sockets) socket.destroy()
    if (this.#server.listening) {
      this.#server.close()
      await once(this.#server, 'close')
    }
    rmSync(this.socket, { force: true })
  }

  /** dockerd comes back on the same socket. */
  async restart (): Promise<void> {
    this.#server = this.#makeServer()
    await this.#listen()
  }

  async #listen (): Promise<void> {
    this.#server.listen(this.socket)
    await once(this.#server, 'listening')
  }

  #makeServer (): Server {
    const server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://docker')
      this.requests.push(`${url.pathname}${url.search}`)
      const filters = JSON.parse(url.searchParams.get('filters') ?? '{}') as Filters
      if (url.pathname === '/events') {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.flushHeaders()
        this.#streams.add(res)
        res.on('close', () => this.#streams.delete(res))
        return
      }
      if (this.hang) return
      const send = (status: number, body: unknown): void => {
        res.writeHead(status, { 'content-type': 'application/json' })
        res.end(JSON.stringify(body))
      }
      const network = this.network
      const networkName = /^\/networks\/([^/]+)$/.exec(url.pathname)?.[1]
      const containerId = /^\/containers\/([0-9a-f]+)\/json$/.exec(url.pathname)?.[1]
      if (networkName !== undefined) {
        if (network === undefined || decodeURIComponent(networkName) !== network.name) return send(404, { message: `network ${decodeURIComponent(networkName)} not found` })
        return send(200, { Name: network.name, Id: network.id, Driver: network.driver ?? 'bridge', IPAM: { Driver: 'default', Options: {}, Config: [{ Subnet: network.subnet }] }, Options: {}, Labels: {} })
      }
      if (url.pathname === '/containers/json') {
        const listed = [...this.containers.values()].filter(c => network !== undefined && (filters.network ?? [network.id]).includes(network.id) && (filters.label ?? []).every(l => labelled(c, l)))
        return send(200, listed.map(c => ({ Id: c.id, Names: [`/${c.name}`], Labels: c.labels ?? {}, State: 'running' })))
      }
      const container = containerId === undefined ? undefined : this.containers.get(containerId)
      if (container === undefined) return send(404, { message: `No such container: ${containerId ?? url.pathname}` })
      send(200, {
        Id: container.id,
        Name: `/${container.name}`,
        State: { Status: 'running', Running: true, Pid: container.pid },
        Config: { Labels: container.labels ?? null },
        NetworkSettings: { Networks: network === undefined ? {} : { [network.name]: { NetworkID: network.id } } }
      })
    })
    server.on('connection', socket => {
      this.#sockets.add(socket)
      socket.on('close', () => this.#sockets.delete(socket))
    })
    return server
  }
}
