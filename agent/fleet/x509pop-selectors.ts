/**
 * What SPIRE's x509pop server plugin says of an attested device (pkg/server/plugin/nodeattestor/x509pop/x509pop.go
 * buildSelectorValues, parseUriSanSelectors; pkg/common/plugin/x509pop/x509pop.go MakeAgentID): its agent ID by the
 * default `agent_path_template` `/{{ .PluginName }}/{{ .Fingerprint }}`, and its selectors, typed with the plugin's
 * name as SPIRE's server types them.
 */
import { parseSpiffeId } from '../../spiffe/id'
import type { SpiffeId, TrustDomain } from '../../spiffe/id'
import type { PopCertificate } from './x509pop-certificate'

/** SPIRE's plugin name: AttestationData.type, the selectors' type, the agent path's first segment. */
export const X509POP_TYPE = 'x509pop'

/** `spiffe://<td>/spire/agent/x509pop/<SHA-1 of the leaf's DER>`. */
export function x509popAgentIdOf (trustDomain: TrustDomain, leaf: PopCertificate): SpiffeId {
  return parseSpiffeId(`spiffe://${trustDomain.name}/spire/agent/${X509POP_TYPE}/${leaf.fingerprint}`)
}

/**
 * In SPIRE's order: subject:cn (when there is a CN), ca:fingerprint of every certificate above the leaf in every
 * verified chain (each once), serialnumber, then san:<key>:<value> of the leaf's `x509pop://<td>/<key>/<value>` URIs.
 */
export function x509popSelectors (trustDomain: TrustDomain, leaf: PopCertificate, chains: readonly PopCertificate[][]): string[] {
  const values: string[] = []
  if (leaf.commonName !== '') values.push(`subject:cn:${leaf.commonName}`)
  const fingerprints = new Set(chains.flatMap(chain => chain.slice(1).map(cert => cert.fingerprint)))
  for (const fingerprint of fingerprints) values.push(`ca:fingerprint:${fingerprint}`)
  values.push(`serialnumber:${leaf.serialHex}`)
  for (const [key, value] of uriSanSelectors(leaf, trustDomain)) values.push(`san:${key}:${value}`)
  return values.map(value => `${X509POP_TYPE}:${value}`)
}

/**
 * Go compares the parsed URI's String() with `x509pop://<td>/`, then splits its decoded path, trimmed of slashes, at
 * the first slash; a later URI with the same key replaces the value (a Go map). URIs without a value are skipped.
 */
function uriSanSelectors (leaf: PopCertificate, trustDomain: TrustDomain): Map<string, string> {
  const prefix = `${X509POP_TYPE}://${trustDomain.name}/`
  const selectors = new Map<string, string>()
  for (const uri of leaf.parsed.uris) {
    // Go's url.Parse lowercases the scheme; the rest of the prefix compares as written.
    const normalized = uri.replace(/^[A-Za-z][A-Za-z0-9+.-]*:/, scheme => scheme.toLowerCase())
    if (!normalized.startsWith(prefix)) continue
    let path: string
    try {
      path = decodeURIComponent(normalized.slice(prefix.length).split(/[?#]/)[0])
    } catch {
      continue // Go's x509 would not have parsed a malformed percent-encoding at all
    }
    const segments = path.replace(/^\/+|\/+$/g, '')
    const slash = segments.indexOf('/')
    if (slash > 0) selectors.set(segments.slice(0, slash), segments.slice(slash + 1))
  }
  return selectors
}
