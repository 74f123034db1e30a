/**
 * An unmodified `spire-agent` (SPIRE_VERSION) attesting with SPIRE's x509pop NodeAttestor (a birth certificate and
 * its key) to the server at `serverAddress`, a SPIRE server or a Chaperone agent with `fleet:`, trusting `bundlePem`;
 * the `unix` workload attestor serves its Workload API at `<dir>/a.sock`; run in a network namespace when `netns` is
 * given. Stopped when the test ends, its log shown when the test failed. Not a test itself.
 */
import type { Test } from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { BirthCert } from '../../certs-test'
import { must, run, waitFor } from '../helpers/command'
import { spireAgent } from './peers'
import { SpireProcess } from './spire-process'

export interface X509popSpireAgentOptions {
  /** A folder of its own (created): config, data, socket. */
  readonly dir: string
  readonly trustDomain: string
  readonly serverAddress: string
  readonly bundlePem: string
  readonly birth: BirthCert
  readonly netns?: string
}

export interface X509popSpireAgent {
  readonly process: SpireProcess
  /** Its Workload API socket (a path). */
  readonly socket: string
  readonly binary: string
  /** `spire-agent api ARGS -socketPath <socket>`, which must succeed: its stdout. */
  api: (args: string[]) => Promise<string>
}

function agentConfig (options: X509popSpireAgentOptions): string {
  const { dir, serverAddress } = options
  const [host, port] = [serverAddress.slice(0, serverAddress.lastIndexOf(':')), serverAddress.slice(serverAddress.lastIndexOf(':') + 1)]
  return `agent {
  data_dir = "${join(dir, 'data')}"
  log_level = "DEBUG"
  server_address = "${host}"
  server_port = "${port}"
  socket_path = "${join(dir, 'a.sock')}"
  trust_bundle_path = "${join(dir, 'bundle.pem')}"
  trust_domain = "${options.trustDomain}"
}
plugins {
  NodeAttestor "x509pop" {
    plugin_data {
      certificate_path = "${join(dir, 'birth.pem')}"
      private_key_path = "${join(dir, 'birth.key')}"
    }
  }
  KeyManager "memory" {
    plugin_data {}
  }
  WorkloadAttestor "unix" {
    plugin_data {}
  }
}
`
}

/** Starts the agent; resolves once it is healthy (it has attested). */
export async function startX509popSpireAgent (t: Test, options: X509popSpireAgentOptions): Promise<X509popSpireAgent> {
  const { dir, birth } = options
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'birth.pem'), birth.chainPem)
  writeFileSync(join(dir, 'birth.key'), birth.keyPem, { mode: 0o600 })
  writeFileSync(join(dir, 'bundle.pem'), options.bundlePem)
  writeFileSync(join(dir, 'agent.conf'), agentConfig(options))
  const binary = await spireAgent()
  const socket = join(dir, 'a.sock')
  const process = new SpireProcess('spire-agent (x509pop)', options.netns)
  t.teardown(async () => {
    await process.stop()
    if (!t.passing()) t.comment(process.tail())
  })
  process.start(binary, ['run', '-config', join(dir, 'agent.conf')])
  await waitFor('spire-agent (x509pop) to attest and be healthy', 60_000, async () => {
    if (!process.running) throw new Error(`spire-agent exited:\n${process.tail()}`)
    return (await run(binary, ['healthcheck', '-socketPath', socket])).status === 0 ? true : undefined
  })
  return { process, socket, binary, api: async args => await must(binary, ['api', ...args, '-socketPath', socket], { timeoutMs: 30_000 }) }
}
