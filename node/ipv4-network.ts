/** IPv4 networks in CIDR notation, and whether an address is in one: which destinations are apps of node proxies. */
import { isIPv4 } from 'node:net'

export interface Ipv4Network { readonly text: string, readonly base: number, readonly mask: number }

function toNumber (address: string): number {
  return address.split('.').reduce((n, octet) => ((n << 8) | Number(octet)) >>> 0, 0)
}

/** `a.b.c.d/n` → a network, or why it is none. Host bits must be zero, so a typo does not widen a network silently. */
export function parseIpv4Network (text: string): Ipv4Network | string {
  const [address, prefixText] = text.split('/')
  const prefix = Number(prefixText)
  if (!isIPv4(address) || !/^\d{1,2}$/.test(prefixText ?? '') || prefix > 32) return `"${text}" is not an IPv4 network (a.b.c.d/0–32)`
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0
  const base = toNumber(address)
  if ((base & ~mask) >>> 0 !== 0) return `"${text}" has host bits set (did you mean ${[24, 16, 8, 0].map(s => ((base & mask) >>> s) & 255).join('.')}/${prefix}?)`
  return { text, base, mask }
}

export function inIpv4Network (network: Ipv4Network, address: string): boolean {
  return isIPv4(address) && ((toNumber(address) & network.mask) >>> 0) === network.base
}

/** The network an interface's address and netmask are on (`172.30.0.1`, `255.255.0.0` → 172.30.0.0/16). */
export function networkOf (address: string, netmask: string): Ipv4Network {
  const mask = toNumber(netmask)
  const base = (toNumber(address) & mask) >>> 0
  const prefix = mask.toString(2).replace(/0+$/, '').length
  return { text: `${[24, 16, 8, 0].map(s => (base >>> s) & 255).join('.')}/${prefix}`, base, mask }
}
