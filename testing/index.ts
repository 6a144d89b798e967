// Test doubles and the site they make up, for the tests, the benchmarks and the demo; never part
// of the agent (src/ imports nothing from here, and neither dist/ nor the bundle holds it).
export * from './simulated-host/index.js';
export { generatePki, loadPki, type Pki, type PkiOptions } from './pki.js';
export {
  startReferenceMcp,
  MAX_BATCH_ENVELOPES,
  type ReferenceMcp,
  type ReferenceMcpOptions,
  type McpStats,
  type HeartbeatSource,
  type Fault as McpFault,
  type ReceiptFault,
} from './reference-mcp/server.js';
export { EvidenceStore, type StoredEvidence } from './reference-mcp/evidence-store.js';
export { startHarness, type Harness, type HarnessOptions } from './harness.js';
