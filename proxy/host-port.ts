/** `host:port` as the sidecar's configuration and its explicit proxy write it. */
export interface HostPort { readonly host: string, readonly port: number }

/** `host:port` → parts; `[::1]:80` for IPv6; port 0 (any free port) only where `listening`. A problem string when malformed. */
export function parseHostPort (text: string, listening = false): HostPort | string {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(text)
  const port = Number(match?.[3])
  if (match === null || port < (listening ? 0 : 1) || port > 65535) return `"${text}" is not host:port (port ${listening ? 0 : 1}–65535; [v6]:port for IPv6)`
  return { host: match[1] ?? match[2], port }
}
