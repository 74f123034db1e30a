/**
 * The store's schema and its migrations: an ordered list, each applied in one transaction together with its row in
 * `schema_migrations`, so a crash leaves the file at the old version or the new one, never in between.
 */
import type Database from 'better-sqlite3'

export interface Migration {
  readonly version: number
  readonly description: string
  readonly sql: string
}

/** `PRAGMA application_id` of every Chaperone store: ASCII "CHPR". Tells our files from other SQLite databases. */
export const CHAPERONE_APPLICATION_ID = 0x43485052

/** Tables that every store has from its first migration on; their absence in a file of ours means it is damaged. */
export const BOOKKEEPING_TABLES = ['schema_migrations', 'meta'] as const

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'registration entries, their selectors, and store metadata',
    sql: `
      CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
      ) WITHOUT ROWID;
      INSERT INTO meta (key, value) VALUES ('store_revision', '0');

      CREATE TABLE entries (
        id             TEXT PRIMARY KEY,
        spiffe_id      TEXT NOT NULL,
        parent_id      TEXT,
        -- the sorted selector set as a JSON array of "type:value": what entries are read from and what the
        -- duplicate rule compares; entry_selectors below is its index for lookups by selector
        selectors      TEXT NOT NULL,
        x509_svid_ttl  INTEGER NOT NULL,
        jwt_svid_ttl   INTEGER NOT NULL,
        dns_names      TEXT NOT NULL,
        hint           TEXT NOT NULL,
        admin          INTEGER NOT NULL,
        downstream     INTEGER NOT NULL,
        federates_with TEXT NOT NULL,
        expires_at     INTEGER,
        revision       INTEGER NOT NULL,
        created_at     INTEGER NOT NULL,
        -- the store revision that created the entry: an exact creation order, even within one second, which
        -- decides a workload's default SVID
        creation_order INTEGER NOT NULL
      ) WITHOUT ROWID;
      -- SPIRE's rule: one entry per (SPIFFE ID, parent ID, selector set)
      CREATE UNIQUE INDEX entries_identity ON entries (spiffe_id, ifnull(parent_id, ''), selectors);

      CREATE TABLE entry_selectors (
        entry_id TEXT NOT NULL REFERENCES entries (id) ON DELETE CASCADE,
        type     TEXT NOT NULL,
        value    TEXT NOT NULL,
        PRIMARY KEY (entry_id, type, value)
      ) WITHOUT ROWID;
      CREATE INDEX entry_selectors_by_selector ON entry_selectors (type, value, entry_id);
    `
  },
  {
    version: 2,
    description: 'federated bundles: other trust domains\' bundles, set by the operator',
    sql: `
      CREATE TABLE federated_bundles (
        -- the trust domain's name, e.g. "other.example" (never the agent's own)
        trust_domain TEXT PRIMARY KEY,
        -- the SPIFFE bundle format document (X.509 authorities and JWT keys in one JWK Set), as the agent wrote it
        -- after validating what the operator sent: the federation standard's own format, which a bundle endpoint
        -- serves as is
        bundle       TEXT NOT NULL,
        -- the document's spiffe_sequence, when it has one: bundles are compared by it (SPIFFE_Federation.md §4.2)
        sequence     INTEGER,
        -- unix seconds of the last set
        updated_at   INTEGER NOT NULL
      ) WITHOUT ROWID;
    `
  },
  {
    version: 3,
    description: 'SPIRE\'s store_svid entry field, and this node\'s agent ID',
    sql: `
      -- SPIRE's store_svid: the SVID goes to an SVIDStore plugin, so the Workload API never issues such an entry
      ALTER TABLE entries ADD COLUMN store_svid INTEGER NOT NULL DEFAULT 0;
      -- the unique part of this node's agent SPIFFE ID (spiffe://<td>/spire/agent/chaperone/<node id>), made once
      -- with the store, so it survives restarts and host name changes exactly as long as the entries parented on it
      INSERT INTO meta (key, value) VALUES ('agent_node_id', lower(hex(randomblob(16))));
    `
  },
  {
    version: 4,
    description: 'authorities appended to this trust domain\'s own bundle (SPIRE\'s AppendBundle)',
    sql: `
      -- X.509 roots and JWT keys served in our own bundle beside the CA's; a rowid table, so rowid is append order
      CREATE TABLE appended_authorities (
        kind        TEXT NOT NULL CHECK (kind IN ('x509', 'jwt')),
        -- x509: the lowercase hex SHA-256 of the certificate's DER; jwt: the key ID
        id          TEXT NOT NULL,
        -- x509: the certificate; jwt: the public key (PKIX SubjectPublicKeyInfo), both DER
        der         BLOB NOT NULL,
        -- unix seconds from which it is no longer served: x509, its notAfter; jwt, its expiry, 0 for none
        expires_at  INTEGER NOT NULL,
        appended_at INTEGER NOT NULL,
        PRIMARY KEY (kind, id)
      );
      -- bumped by every change of the table; added to the CA's bundle sequence number
      INSERT INTO meta (key, value) VALUES ('appended_authorities_revision', '0');
    `
  },
  {
    version: 5,
    description: 'agents attested to this agent in its upstream role (SPIRE\'s attested nodes), and entries by parent',
    sql: `
      CREATE TABLE attested_agents (
        -- spiffe://<td>/spire/agent/<attestation type>/…
        spiffe_id        TEXT PRIMARY KEY,
        -- the node attestor, e.g. "x509pop"
        attestation_type TEXT NOT NULL,
        -- its node selectors as its last attestation gave them, kept as entries keep theirs: the sorted set as a
        -- JSON array of "type:value"
        selectors        TEXT NOT NULL,
        -- SPIRE's cert_serial_number: the serial of the agent X509-SVID last issued to it, in decimal; '' once
        -- banned, as SPIRE marks a ban
        serial_number    TEXT NOT NULL,
        -- SPIRE's cert_not_after: that SVID's notAfter, unix seconds
        expires_at       INTEGER NOT NULL,
        can_reattest     INTEGER NOT NULL CHECK (can_reattest IN (0, 1)),
        banned           INTEGER NOT NULL CHECK (banned IN (0, 1)),
        -- unix seconds of its last attestation
        attested_at      INTEGER NOT NULL,
        CHECK ((banned = 1) = (serial_number = ''))
      ) WITHOUT ROWID;
      -- the entries parented on an ID: the crawl of the entries authorized to an agent
      CREATE INDEX entries_by_parent ON entries (parent_id);
    `
  },
  {
    version: 6,
    description: 'federation relationships: where other trust domains serve their bundles, and how to authenticate them',
    sql: `
      CREATE TABLE federation_relationships (
        -- the other trust domain's name, e.g. "plant-b.example" (never the agent's own)
        trust_domain        TEXT PRIMARY KEY,
        -- the https URL of its bundle endpoint
        bundle_endpoint_url TEXT NOT NULL,
        profile             TEXT NOT NULL CHECK (profile IN ('https_web', 'https_spiffe')),
        -- the SPIFFE ID the endpoint must present, https_spiffe only
        endpoint_spiffe_id  TEXT,
        -- 'config': from the agent's config file (changed there only); 'api': made at run time
        source              TEXT NOT NULL CHECK (source IN ('config', 'api')),
        created_at          INTEGER NOT NULL,
        updated_at          INTEGER NOT NULL,
        CHECK ((profile = 'https_spiffe') = (endpoint_spiffe_id IS NOT NULL))
      ) WITHOUT ROWID;
    `
  }
]

export const LATEST_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version

/** The version recorded in the file; 0 for a database without our bookkeeping (a fresh file). */
export function schemaVersion (db: Database.Database): number {
  const table = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'").get()
  if (table === undefined) return 0
  const row = db.prepare('SELECT max(version) AS version FROM schema_migrations').get() as { version: number | null }
  return row.version ?? 0
}

/** Applies the migrations above the file's version, in order, one transaction each; returns the versions applied. */
export function applyMigrations (db: Database.Database, migrations: readonly Migration[], appliedAt: number): number[] {
  const from = schemaVersion(db)
  const apply = db.transaction((migration: Migration) => {
    // Idempotent bookkeeping, inside the first migration's transaction: the file becomes recognisably ours
    // (application id, version table) atomically with its first schema, never before.
    db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at INTEGER NOT NULL)')
    db.pragma(`application_id = ${CHAPERONE_APPLICATION_ID}`)
    db.exec(migration.sql)
    db.prepare('INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)')
      .run(migration.version, migration.description, appliedAt)
  })
  const pending = migrations.filter(migration => migration.version > from)
  for (const migration of pending) apply(migration)
  return pending.map(migration => migration.version)
}
