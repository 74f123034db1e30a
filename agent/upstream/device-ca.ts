/**
 * The device CA from the upstream SPIRE server, as SPIRE's `spire` UpstreamAuthority gets a downstream server's CA
 * (pkg/server/plugin/upstreamauthority/spire): `SVID/NewDownstreamX509CA` {csr, preferred_ttl} over mTLS with the
 * X509-SVID of the device's downstream entry. SPIRE refuses any other caller (PermissionDenied "authorization denied
 * for method …", kept as ERR_UPSTREAM_DENIED). The answer is checked by device-ca-check.ts.
 */
import type { KeyObject } from 'node:crypto'
import { SvidClientService } from '../spire-api/grpc-proto'
import { acceptDeviceCa } from './device-ca-check'
import type { DeviceCa, DownstreamCaMessage } from './device-ca-check'
import { newDeviceCaKey } from './device-ca-key'
import type { EntrySvid } from './entry-svid'
import { callUpstream, deadlineAfter, upstreamClient } from './upstream-client'
import type { UpstreamServer } from './server-trust'

export interface DeviceCaOptions {
  /** The key to certify (the CA's own); a fresh EC P-256 key pair when absent. */
  readonly keys?: { readonly privateKey: KeyObject, readonly publicKey: KeyObject }
  /** The lifetime asked for, in seconds; 0 or absent: the upstream's `ca_ttl`. Never past the upstream's own CA. */
  readonly preferredTtlSeconds?: number
  /** For the call; 30 s by default. */
  readonly timeoutMs?: number
}

/** A new device CA signed by `server`, asked for as `downstream` (the downstream entry's SVID). */
export async function newDeviceCa (server: UpstreamServer, downstream: EntrySvid, options: DeviceCaOptions = {}): Promise<DeviceCa> {
  const key = await newDeviceCaKey(server.trustDomain, options.keys)
  const client = upstreamClient(SvidClientService, server, downstream)
  try {
    const request = { csr: key.csr, preferred_ttl: options.preferredTtlSeconds ?? 0 }
    const response = await callUpstream<DownstreamCaMessage>(client, 'NewDownstreamX509CA', request, deadlineAfter(options.timeoutMs), server.address)
    return acceptDeviceCa(response, key.privateKey, server.trustDomain)
  } finally {
    client.close()
  }
}
