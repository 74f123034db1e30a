/**
 * agent/ — the bundled SPIFFE agent: the CA issuing X509-SVIDs and JWT-SVIDs, the registration store (SQLite),
 * workload attestation by kernel peer credentials, the SPIFFE Workload API server, the admin API, and rotation.
 * May import spiffe/ only; it never imports proxy/ (they meet over the Workload API). Arrives with the agent issues.
 */
export {}
