/**
 * The container a process runs in, from its cgroup paths in /proc/<pid>/cgroup. Container runtimes put each
 * container in a cgroup named after its 64-hex id; the process cannot leave it without privileges on the host.
 */

/** A cgroup path segment that names a container: `<id>` (docker/cgroupfs, kubepods), or `docker-<id>.scope`,
 * `cri-containerd-<id>.scope`, `crio-<id>.scope`, `libpod-<id>.scope` (systemd cgroup driver). */
const CONTAINER_SEGMENT = /^(?:[a-z][a-z-]*-)?([0-9a-f]{64})(?:\.scope)?$/

export type ContainerIdResult =
  | { readonly kind: 'none' }
  | { readonly kind: 'found', readonly id: string }
  | { readonly kind: 'ambiguous', readonly ids: readonly string[] }

/**
 * Reads cgroup v1 (`12:memory:/docker/<id>`) and v2 (`0::/system.slice/docker-<id>.scope`) lines. In a path the
 * last segment naming a container wins (docker-in-docker: the innermost). Different ids on different lines cannot
 * be one container, so they are reported as ambiguous rather than guessed between.
 */
export function parseContainerId (cgroup: string): ContainerIdResult {
  const ids = new Set<string>()
  for (const line of cgroup.split('\n')) {
    const path = line.split(':').slice(2).join(':')
    let id: string | undefined
    for (const segment of path.split('/')) id = CONTAINER_SEGMENT.exec(segment)?.[1] ?? id
    if (id !== undefined) ids.add(id)
  }
  if (ids.size === 0) return { kind: 'none' }
  const [first] = ids
  return ids.size === 1 && first !== undefined ? { kind: 'found', id: first } : { kind: 'ambiguous', ids: [...ids] }
}
