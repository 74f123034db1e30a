/**
 * Compose v2, built from the Go module proxy at a pinned version into the cache folder (once; about three minutes
 * and 1.3 GB of Go caches cold), so the deployment test runs the compose file with Compose v2 as well as with
 * Debian's docker-compose 1.29. Not a test itself.
 */
import { join } from 'node:path'
import { buildGoTool } from '../../../bench/peers/go-tool'
import { CACHE_DIR } from './engine'

export const COMPOSE_V2_VERSION = 'v2.40.3'
const MODULE = 'github.com/docker/compose/v2'

/** The path of the built docker-compose binary, building it first when the cache has none. */
export async function composeV2 (): Promise<string> {
  return await buildGoTool({
    module: MODULE,
    command: `${MODULE}/cmd`,
    version: COMPOSE_V2_VERSION,
    output: join(CACHE_DIR, `compose-${COMPOSE_V2_VERSION}`, 'docker-compose'),
    // What `docker compose version` prints comes from this variable, as in Compose's own build.
    ldflags: `-s -w -X ${MODULE}/internal.Version=${COMPOSE_V2_VERSION}`
  })
}
