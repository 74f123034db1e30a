/**
 * PEM (RFC 7468) encoding of certificates: the text form operators and tools like openssl exchange.
 */

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([^-]*)-----END \1-----/g

export interface PemBlock {
  readonly label: string
  readonly der: Buffer
}

/** Every PEM block in the text, in order; text between blocks (comments, `openssl x509 -text` output) is ignored. */
export function decodePem (text: string): PemBlock[] {
  const blocks: PemBlock[] = []
  for (const match of text.matchAll(PEM_BLOCK)) {
    const body = match[2].replace(/\s+/g, '')
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body)) throw new Error(`PEM block ${match[1]} is not valid base64`)
    blocks.push({ label: match[1], der: Buffer.from(body, 'base64') })
  }
  return blocks
}

/** One PEM block per DER buffer, with the given label, lines of 64 characters. */
export function encodePem (label: string, ders: Iterable<Uint8Array>): string {
  let out = ''
  for (const der of ders) {
    const body = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')
    out += `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`
  }
  return out
}
