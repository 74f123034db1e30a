import t from 'tap'
import { createServer } from 'node:http'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { formatSelector } from '../../../agent/store'
import { WorkloadAttestor } from '../../../agent/attestation'
import { CONTAINER_ID, FAKE_PID, fakeProc } from './fixtures/fake-proc'

const dir = mkdtempSync(join(tmpdir(), 'chaperone-docker-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

const IMAGE = 'registry.example/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef'

/** Stands in for the Docker daemon (no Docker engine runs here): answers inspect for one container, 404 otherwise. */
async function standInDocker (t: { teardown: (fn: () => void) => void }, socketPath: string, known: string): Promise<void> {
  const server = createServer((req, res) => {
    if (req.url !== `/containers/${known}/json`) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"No such container"}')
      return
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
      Id: known,
      Image: 'sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
      Config: {
        Image: IMAGE,
        Labels: { 'com.example.app': 'billing', 'com.example.tier': 'a:b', '': 'no key' },
        Env: ['PATH=/usr/bin', 'APP_MODE=prod', 'MULTI=line\nbreak', '=nameless']
      }
    }))
  })
  server.listen(socketPath)
  await once(server, 'listening')
  t.teardown(() => server.close())
}

async function attestInContainer (t: { teardown: (fn: () => void) => void }, socketPath: string): Promise<string[]> {
  const procRoot = fakeProc(t, { cgroup: `0::/system.slice/docker-${CONTAINER_ID}.scope\n` })
  const attestor = new WorkloadAttestor({ procRoot, docker: { socketPath } })
  return (await attestor.attest({ pid: FAKE_PID, uid: 1234, gid: 1234 })).map(formatSelector)
}

void t.test('docker – labels, image id and environment of the container become selectors', async t => {
  const socketPath = join(dir, 'docker.sock')
  await standInDocker(t, socketPath, CONTAINER_ID)
  const selectors = await attestInContainer(t, socketPath)
  t.same(selectors.filter(text => text.startsWith('docker:')), [
    'docker:container_id:' + CONTAINER_ID,
    'docker:env:APP_MODE=prod',
    'docker:env:PATH=/usr/bin',
    `docker:image_id:${IMAGE}`,
    'docker:label:com.example.app:billing',
    'docker:label:com.example.tier:a:b'
  ], 'facts the store would reject (control characters, empty names) are left out')
  t.ok(selectors.includes('unix:uid:1234'), 'alongside the unix selectors')
})

void t.test('docker – an unknown container or no daemon leaves the unix selectors', async t => {
  const socketPath = join(dir, 'docker-404.sock')
  await standInDocker(t, socketPath, 'e'.repeat(64))
  for (const [why, path] of [['404', socketPath], ['no daemon', join(dir, 'nobody-listens.sock')]]) {
    const selectors = await attestInContainer(t, path)
    t.same(selectors.filter(text => text.startsWith('docker:')), [`docker:container_id:${CONTAINER_ID}`], `${why}: only the container id`)
    t.ok(selectors.includes('unix:uid:1234'), `${why}: unix selectors still there`)
  }
})
