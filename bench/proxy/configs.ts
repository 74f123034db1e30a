/**
 * Configurations of the reference proxies. Each hop is its own process with one thread (haproxy `nbthread 1`,
 * nginx one worker), like a Chaperone sidecar is one Node process: a client-side and a server-side hop, mutual
 * TLS between them with the same SVIDs the sidecars use.
 */
import { join } from 'node:path'

export interface Svid { readonly cert: string, readonly key: string, /** cert + key in one file, as haproxy's `crt` wants */ readonly combined: string }
export interface Pki { readonly client: Svid, readonly server: Svid, readonly bundle: string }

const haproxyHead = (mode: 'tcp' | 'http'): string => `global
  nbthread 1
  maxconn 4000
defaults
  mode ${mode}
  timeout connect 5s
  timeout client 60s
  timeout server 60s
`

/**
 * haproxy verifies the peer's chain to the bundle (`verify required`) but, with no `verifyhost`/`sni`, no name:
 * it cannot check a SPIFFE ID in a URI SAN. Chaperone checks the chain, the ID and the policy: more work per handshake.
 */
export function haproxyClientHop (mode: 'tcp' | 'http', listen: number, next: number, pki: Pki): string {
  return `${haproxyHead(mode)}frontend plain
  bind 127.0.0.1:${listen}
  default_backend mtls
backend mtls
  server next 127.0.0.1:${next} ssl crt ${pki.client.combined} ca-file ${pki.bundle} verify required
`
}

export function haproxyServerHop (mode: 'tcp' | 'http', listen: number, backend: number, pki: Pki): string {
  return `${haproxyHead(mode)}frontend mtls
  bind 127.0.0.1:${listen} ssl crt ${pki.server.combined} ca-file ${pki.bundle} verify required
  default_backend app
backend app
  server app 127.0.0.1:${backend}
`
}

/** The common frame: one worker, everything nginx writes kept in `dir`, long keep-alive so wrk never reconnects. */
function nginxFrame (dir: string, name: string, servers: string): string {
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(kind => `  ${kind}_temp_path ${join(dir, `${name}-${kind}`)};`).join('\n')
  // As root, nginx would switch its worker to `nobody`, which cannot enter the private temp dir.
  const user = process.getuid?.() === 0 ? 'user root;\n' : ''
  return `${user}worker_processes 1;
daemon off;
master_process on;
pid ${join(dir, `${name}.pid`)};
error_log ${join(dir, `${name}.err`)} warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
${temp}
${servers}
}
`
}

/** Where the backend serves a large body, and the file (in `dir`) it serves it from. */
export const BODY_PATH = '/1m'
export const bodyFile = (dir: string): string => join(dir, 'www', BODY_PATH)
/** What the backend passes on to the connection audit's holder (bench/proxy/audit.ts). */
export const HELD_PATH = '/held'

/** `alsoPorts`: more loopback ports it serves the same on (node mode's apps: one HTTP-mode port, one TCP-mode port). */
export function nginxBackend (dir: string, port: number, holderPort: number, alsoPorts: readonly number[] = []): string {
  return nginxFrame(dir, 'backend', `  server {
${[port, ...alsoPorts].map(p => `    listen 127.0.0.1:${p};`).join('\n')}
    sendfile on;
    location / { default_type text/plain; return 200 "hello from the backend\\n"; }
    location = ${BODY_PATH} { root ${join(dir, 'www')}; default_type application/octet-stream; }
    location = ${HELD_PATH} { proxy_pass http://127.0.0.1:${holderPort}; }
  }`)
}

const keepAliveUpstream = (name: string, port: number): string => `  upstream ${name} { server 127.0.0.1:${port}; keepalive 128; keepalive_requests 10000000; }`
// No temp files: a body larger than nginx's memory buffers is streamed as the others do, not spooled to disk.
const upstreamProxying = '      proxy_http_version 1.1;\n      proxy_set_header Connection "";\n      proxy_max_temp_file_size 0;'

/**
 * nginx can only check a server certificate's DNS names or CN (`proxy_ssl_verify`), and an SVID carries its ID in
 * a URI SAN: so the client hop presents its certificate but does not verify the server. The server hop verifies
 * the client's chain (`ssl_verify_client on`). Weaker checks than the other two proxies; the table says so.
 */
export function nginxClientHop (dir: string, listen: number, next: number, pki: Pki): string {
  return nginxFrame(dir, 'nginx-client', `${keepAliveUpstream('mtls', next)}
  server {
    listen 127.0.0.1:${listen};
    location / {
      proxy_pass https://mtls;
${upstreamProxying}
      proxy_ssl_certificate ${pki.client.cert};
      proxy_ssl_certificate_key ${pki.client.key};
      proxy_ssl_session_reuse on;
      proxy_ssl_verify off;
    }
  }`)
}

export function nginxServerHop (dir: string, listen: number, backend: number, pki: Pki): string {
  return nginxFrame(dir, 'nginx-server', `${keepAliveUpstream('app', backend)}
  server {
    listen 127.0.0.1:${listen} ssl;
    ssl_certificate ${pki.server.cert};
    ssl_certificate_key ${pki.server.key};
    ssl_client_certificate ${pki.bundle};
    ssl_verify_client on;
    location / {
      proxy_pass http://app;
${upstreamProxying}
    }
  }`)
}
