/**
 * The upstream role from the agent's `fleet:` settings: the manufacturers' roots read from their file, each problem an
 * ERR_FLEET_CONFIG_INVALID naming the setting, the file and what is wrong, so the agent refuses to start with a
 * sentence an operator can act on; then the fleet server on the CA and the store.
 */
import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { Logger } from 'pino'
import { decodePem } from '../../spiffe/pem'
import type { AgentCa } from '../ca'
import type { FleetConfig } from '../config'
import type { RegistrationStore } from '../store'
import { FleetError } from './errors'
import { FleetServer } from './fleet-server'

export async function startFleetFromConfig (config: FleetConfig, ca: AgentCa, store: RegistrationStore, logger: Logger): Promise<FleetServer> {
  const file = config.manufacturerBundleFile
  const invalid = (why: string, cause?: unknown): FleetError => new FleetError('ERR_FLEET_CONFIG_INVALID', `fleet.manufacturerBundleFile ${file} ${why}`, { cause })
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw invalid(`cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, err)
  }
  let roots: X509Certificate[]
  try {
    roots = decodePem(text).filter(block => block.label === 'CERTIFICATE').map(block => new X509Certificate(block.der))
  } catch (err) {
    throw invalid(`does not hold PEM certificates (${(err as Error).message})`, err)
  }
  if (roots.length === 0) throw invalid('holds no PEM CERTIFICATE block: put the manufacturers\' root certificates there')
  return await FleetServer.start({ host: config.host, port: config.port, ca, store, manufacturerRoots: roots, logger })
}
