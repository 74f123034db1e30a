/**
 * Docker selectors: what the Docker Engine says about a container (`GET /containers/<id>/json` on its Unix socket):
 * labels, image id and environment, as SPIRE's docker attestor reports them.
 */
import { request } from 'node:http'

const TIMEOUT_MS = 2000
/** An inspect answer is a few KiB; the cap only stops a confused peer from filling memory. */
const MAX_BODY_BYTES = 4 * 1024 * 1024

export interface ContainerInspect {
  readonly Config?: { readonly Image?: unknown, readonly Labels?: unknown, readonly Env?: unknown }
}

/** `docker:…` selector texts for one inspect answer; the caller validates each. */
export function dockerSelectorTexts (inspect: ContainerInspect): string[] {
  const texts: string[] = []
  const labels = inspect.Config?.Labels
  if (typeof labels === 'object' && labels !== null) {
    for (const [key, value] of Object.entries(labels)) {
      if (typeof value === 'string') texts.push(`docker:label:${key}:${value}`)
    }
  }
  // `Config.Image`, the image as the container was created from (a name, tag or digest), exactly as SPIRE's
  // docker attestor reads it, so registration entries mean the same in both. Pin a digest (name@sha256:…) in the
  // entry for a selector that a re-pointed tag cannot satisfy.
  const image = inspect.Config?.Image
  if (typeof image === 'string' && image !== '') texts.push(`docker:image_id:${image}`)
  const env = inspect.Config?.Env
  if (Array.isArray(env)) {
    for (const entry of env) if (typeof entry === 'string') texts.push(`docker:env:${entry}`)
  }
  return texts
}

/** Inspects a container; rejects with a message saying what went wrong (unreachable, timeout, status, bad JSON). */
export async function inspectContainer (socketPath: string, containerId: string): Promise<ContainerInspect> {
  return await new Promise((resolve, reject) => {
    const req = request({ socketPath, path: `/containers/${containerId}/json`, headers: { host: 'docker' } }, res => {
      const chunks: Buffer[] = []
      let length = 0
      res.on('data', (chunk: Buffer) => {
        length += chunk.length
        if (length > MAX_BODY_BYTES) req.destroy(new Error(`answer larger than ${MAX_BODY_BYTES} bytes`))
        else chunks.push(chunk)
      })
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`HTTP ${res.statusCode} for container ${containerId}`))
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as ContainerInspect)
        } catch (err) {
          reject(new Error(`invalid JSON: ${(err as Error).message}`))
        }
      })
      res.on('error', reject)
    })
    // A deadline for the whole exchange, not an idle timeout: a daemon that trickles bytes must not stall attestation.
    const deadline = setTimeout(() => req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)), TIMEOUT_MS)
    req.on('close', () => clearTimeout(deadline))
    req.on('error', reject)
    req.end()
  })
}
