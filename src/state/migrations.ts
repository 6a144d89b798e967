/**
 * Schema of the state database (one SQLite file in stateDir). Append new migrations; never edit
 * an applied one. Each stage owns its tables; the file is shared so that chaining, storing and
 * enqueueing a bundle can be one transaction.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: evidence chain, local evidence store, outbox, orders, check results, key/value.
  `
  CREATE TABLE chain_head (
    host_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    head_hash TEXT NOT NULL
  );
  CREATE TABLE evidence (
    seq INTEGER NOT NULL,
    host_id TEXT NOT NULL,
    bundle_id TEXT NOT NULL UNIQUE,
    check_name TEXT NOT NULL,
    outcome TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    envelope TEXT NOT NULL,
    envelope_hash TEXT NOT NULL,
    exported INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (host_id, seq)
  );
  CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    destination TEXT NOT NULL,
    bundle_id TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    lease_until INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    dead_reason TEXT,
    receipt_id TEXT,
    done_at INTEGER,
    UNIQUE (destination, bundle_id)
  );
  CREATE INDEX outbox_ready ON outbox (destination, state, id);
  CREATE TABLE orders_seen (
    order_id TEXT PRIMARY KEY,
    site_id TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    decision TEXT NOT NULL,
    reason TEXT,
    seen_at INTEGER NOT NULL
  );
  CREATE TABLE order_sequence (
    site_id TEXT PRIMARY KEY,
    last_sequence INTEGER NOT NULL
  );
  CREATE TABLE check_results (
    check_name TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    result TEXT NOT NULL,
    checked_at INTEGER NOT NULL,
    last_emitted_at INTEGER
  );
  CREATE TABLE kv (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
  );
  `,
  // 2: dead letters alerted once each; operator actions on dead letters awaiting their evidence.
  `
  ALTER TABLE outbox ADD COLUMN dead_alerted INTEGER NOT NULL DEFAULT 0;
  CREATE TABLE operator_actions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    action TEXT NOT NULL CHECK (action IN ('replay', 'discard')),
    items TEXT NOT NULL,
    reason TEXT,
    operator TEXT NOT NULL,
    requested_at INTEGER NOT NULL,
    bundle_id TEXT
  );
  `,
  // 3: which healer results the agent has turned into evidence, and which requests it reported
  // unanswered (the healer's results and the drop box are root's and the agent's files, not rows).
  `
  CREATE TABLE heal_results_seen (
    result_id TEXT PRIMARY KEY,
    request_id TEXT,
    seen_at INTEGER NOT NULL
  );
  CREATE INDEX heal_results_seen_request ON heal_results_seen (request_id);
  CREATE TABLE heal_requests_overdue (
    request_id TEXT PRIMARY KEY,
    reported_at INTEGER NOT NULL
  );
  `,
  // 4: the MCP's countersigned receipts, one per acknowledged bundle (docs/mcp-api.md).
  `
  CREATE TABLE receipts (
    bundle_id TEXT PRIMARY KEY,
    host_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    envelope_hash TEXT NOT NULL,
    receipt_id TEXT NOT NULL,
    receipt TEXT NOT NULL,
    keyid TEXT,
    received_at INTEGER NOT NULL
  );
  CREATE INDEX receipts_by_seq ON receipts (host_id, seq);
  `,
];
