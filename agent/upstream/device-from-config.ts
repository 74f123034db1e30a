/**
 * The device role from the agent's `upstream:` settings: the bootstrap bundle and the birth certificate read from
 * their files, each problem an ERR_UPSTREAM_CONFIG_INVALID naming the setting, the file and what is wrong, so the
 * agent refuses to start with a sentence an operator can act on.
 */
import { readFileSync } from 'node:fs'
import type { TrustDomain } from '../../spiffe/id'
import type { DeviceUpstreamConfig } from '../config'
import { DeviceUpstream } from './device-upstream'
import { UpstreamError } from './errors'
import { upstreamServer } from './server-trust'
import { birthCredentialFromPem } from './x509pop-credential'
import { x509popAttestor } from './x509pop-attestor'

export function deviceUpstreamFromConfig (config: DeviceUpstreamConfig, trustDomain: TrustDomain): DeviceUpstream {
  const read = (setting: string, path: string): string => {
    try {
      return readFileSync(path, 'utf8')
    } catch (err) {
      throw invalid(`${setting} ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, err)
    }
  }
  const server = checked(`upstream.trustBundleFile ${config.trustBundleFile}`, () => upstreamServer(config.address, trustDomain, read('upstream.trustBundleFile', config.trustBundleFile)))
  const { certFile, keyFile } = config.x509pop
  const credential = checked(`upstream.x509pop (${certFile}, ${keyFile})`,
    () => birthCredentialFromPem(read('upstream.x509pop.certFile', certFile), read('upstream.x509pop.keyFile', keyFile)))
  return new DeviceUpstream({ server, attestor: x509popAttestor(credential), timeoutMs: config.timeoutMs })
}

function invalid (message: string, cause?: unknown): UpstreamError {
  return new UpstreamError('ERR_UPSTREAM_CONFIG_INVALID', message, { cause })
}

/** Runs `make`; a problem other than our own becomes ERR_UPSTREAM_CONFIG_INVALID about `setting`. */
function checked<T> (setting: string, make: () => T): T {
  try {
    return make()
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_UPSTREAM_CONFIG_INVALID') throw err
    throw invalid(`${setting}: ${(err as Error).message}`, err)
  }
}
