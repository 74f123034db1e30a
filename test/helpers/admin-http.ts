/** Reading a sidecar's admin endpoints from tests, and waiting for what they (or its logs) come to say. */
import { get } from 'node:http'

/** GET on the admin listener (`host:port`): the status and the body as text. */
export async function adminGet (address: string, path: string): Promise<{ status: number, body: string }> {
  return await new Promise((resolve, reject) => {
    get(`http://${address}${path}`, res => {
      let body = ''
      res.setEncoding('utf8').on('data', (chunk: string) => { body += chunk }).on('end', () => { resolve({ status: res.statusCode ?? 0, body }) })
    }).on('error', reject)
  })
}

/** Polls `condition` every 50 ms; rejects naming `what` after `ms`. */
export async function until (what: string, condition: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}
