/**
 * The listener flags of `chaperone proxy run`: `--inbound LISTEN=TARGET`, `--outbound
 * LISTEN=TARGET[@EXPECTED_ID][,port=PORT]` (and their `-http` forms, `--http-proxy LISTEN`), turned into listeners
 * of the configuration file's shape, so one schema checks both.
 */
export type Protocol = 'tcp' | 'http'

/** A listener given by a flag: `flag` names it in problems (`--outbound flag 2`); `problem` says what is malformed. */
/** `problem`: what is wrong with the flag, about its `field` when it names one (else the flag as a whole). */
export interface FlagListener { readonly flag: string, readonly listener: Record<string, unknown>, readonly problem?: string, readonly field?: string }

/**
 * Flags `LISTEN=TARGET` (outbound: `LISTEN=TARGET[@EXPECTED_ID][,port=PORT]`) as listeners of the file's shape.
 * SPIFFE IDs and host:port hold no comma, so the first one starts the suffix.
 */
export function flagListeners (flag: string, values: readonly string[] = [], protocol: Protocol, outbound: boolean): FlagListener[] {
  return values.map((value, i) => {
    const named = `--${flag} flag ${i + 1}`
    if (!value.includes('=')) {
      const example = outbound ? '127.0.0.1:15001=app-b.internal:15443@spiffe://plant.example/app-b' : '0.0.0.0:15443=127.0.0.1:8080'
      return { flag: named, listener: { listen: value, protocol }, problem: `"${value}" is not LISTEN=TARGET, e.g. --${flag} ${example}` }
    }
    const [listen, rest = ''] = value.split(/=(.*)/s)
    const comma = outbound ? rest.indexOf(',') : -1
    const destination = comma === -1 ? rest : rest.slice(0, comma)
    const at = outbound ? destination.indexOf('@') : -1
    const listener = { listen, target: at === -1 ? destination : destination.slice(0, at), protocol, ...(at === -1 ? {} : { expect: destination.slice(at + 1) }) }
    if (comma === -1) return { flag: named, listener }
    const port = /^port=(\d+)$/.exec(rest.slice(comma + 1))?.[1]
    return port === undefined
      ? { flag: named, listener, field: 'servicePort', problem: `"${rest.slice(comma)}" after the target is not ",port=PORT" (the service port the listener stands for)` }
      : { flag: named, listener: { ...listener, servicePort: Number(port) } }
  })
}
