/**
 * Reads what tcpdump captured on the deployment's bridge: the TCP byte streams of each connection, one per direction,
 * and whether a stream is TLS records from its first byte. Ethernet and IPv4 only (a Docker bridge network). Not a
 * test itself.
 */

export interface TcpStream {
  /** `src:port>dst:port` */
  readonly key: string
  readonly src: string
  readonly dst: string
  readonly dstPort: number
  /** The payload in sequence order, each byte once (retransmissions dropped). */
  readonly bytes: Buffer
}

interface Segment { seq: number, payload: Buffer }

const ipv4 = (b: Buffer, at: number): string => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`

/** The TCP streams in a classic pcap file (link type Ethernet); throws on anything else. */
export function tcpStreams (pcap: Buffer): TcpStream[] {
  if (pcap.length < 24) throw new Error(`not a pcap file: ${pcap.length} bytes`)
  const magic = pcap.readUInt32LE(0)
  if (magic !== 0xa1b2c3d4 && magic !== 0xa1b23c4d) throw new Error(`not a little-endian pcap file (magic ${magic.toString(16)})`)
  if (pcap.readUInt32LE(20) !== 1) throw new Error(`link type ${pcap.readUInt32LE(20)}, not Ethernet`)
  const segments = new Map<string, { src: string, dst: string, dstPort: number, parts: Segment[] }>()
  for (let at = 24; at + 16 <= pcap.length;) {
    const captured = pcap.readUInt32LE(at + 8)
    const frame = pcap.subarray(at + 16, at + 16 + captured)
    at += 16 + captured
    if (frame.length < 34 || frame.readUInt16BE(12) !== 0x0800 || frame[23] !== 6) continue
    const ipHeader = (frame[14] & 0x0f) * 4
    const ipEnd = 14 + frame.readUInt16BE(16)
    const tcp = 14 + ipHeader
    const payloadAt = tcp + (frame[tcp + 12] >> 4) * 4
    const src = ipv4(frame, 26)
    const dst = ipv4(frame, 30)
    const key = `${src}:${frame.readUInt16BE(tcp)}>${dst}:${frame.readUInt16BE(tcp + 2)}`
    const stream = segments.get(key) ?? { src, dst, dstPort: frame.readUInt16BE(tcp + 2), parts: [] }
    segments.set(key, stream)
    const payload = frame.subarray(payloadAt, Math.min(ipEnd, frame.length))
    if (payload.length > 0) stream.parts.push({ seq: frame.readUInt32BE(tcp + 4), payload })
  }
  return [...segments].map(([key, s]) => ({ key, src: s.src, dst: s.dst, dstPort: s.dstPort, bytes: inOrder(s.parts) }))
}

/** Joins segments by sequence number (relative to the first, so a wrap of the 32-bit counter is fine). */
function inOrder (parts: Segment[]): Buffer {
  if (parts.length === 0) return Buffer.alloc(0)
  const first = parts[0].seq
  const offset = (seq: number): number => (seq - first + 2 ** 32) % 2 ** 32
  const sorted = [...parts].sort((a, b) => offset(a.seq) - offset(b.seq))
  const out: Buffer[] = []
  let next = 0
  for (const part of sorted) {
    const start = offset(part.seq)
    if (start + part.payload.length <= next) continue
    out.push(part.payload.subarray(Math.max(0, next - start)))
    next = start + part.payload.length
  }
  return Buffer.concat(out)
}

/**
 * Undefined when `bytes` is nothing but TLS records (content types 20–24, version 3.x, lengths within the limit),
 * the last possibly cut short by the end of the capture; else where and why it is not.
 */
export function notTls (bytes: Buffer): string | undefined {
  for (let at = 0; at < bytes.length;) {
    if (at + 5 > bytes.length) return undefined
    const type = bytes[at]
    const length = bytes.readUInt16BE(at + 3)
    if (type < 20 || type > 24 || bytes[at + 1] !== 3 || length > 2 ** 14 + 2048) {
      return `byte ${at} is not a TLS record header: ${JSON.stringify(bytes.subarray(at, at + 24).toString('latin1'))}`
    }
    at += 5 + length
  }
  return undefined
}
