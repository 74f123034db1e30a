/** admin.proto's WorkloadApiStatus as the loader gives it (keepCase, int64 as numbers). */
export interface WorkloadApiStatusMessage {
  open_connections: number
  refused: Record<string, number>
  idle_timeout_ms: number
  max_connections_per_uid: number
  reserved_descriptors: number
  open_files_limit: number
}
