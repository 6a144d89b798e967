import { writeFileAtomic } from '../common/index.js';

export interface MetricsSnapshot {
  readonly lastPollTimestamp: number | null;
  readonly lastPollOk: boolean;
  readonly cycleDurationMs: number;
  readonly cycles: number;
  readonly chainSeq: number;
  readonly bundlesCreated: number;
  readonly ordersAccepted: number;
  readonly ordersRejected: number;
  readonly queue: readonly { destination: string; pending: number; dead: number; oldestPendingAgeMs: number | null }[];
  readonly checks: readonly { check: string; status: 'compliant' | 'drift' | 'error' }[];
  /** Per destination in use: whether deliveries are failing, of which kind, since when the last error. */
  readonly delivery?: readonly { destination: string; failing: boolean; kind: string | null; lastErrorAt: number | null }[];
  /** Age of the newest MSP-signed time seen (null before the first cycle) and whether it is over the bound. */
  readonly controlPlane?: { readonly ageMs: number | null; readonly stale: boolean };
}

const STATUS_VALUE = { compliant: 0, drift: 1, error: 2 } as const;

/** Prometheus text exposition format, for node_exporter's textfile collector. */
export function renderMetrics(m: MetricsSnapshot): string {
  const lines: string[] = [];
  const metric = (name: string, help: string, type: 'gauge' | 'counter', samples: [string, number][]) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, v] of samples) lines.push(`${name}${labels} ${Number.isFinite(v) ? v : 0}`);
  };
  metric('compliance_agent_last_poll_timestamp_seconds', 'Time of the last MCP poll attempt.', 'gauge', [['', (m.lastPollTimestamp ?? 0) / 1000]]);
  metric('compliance_agent_last_poll_success', '1 when the last MCP poll succeeded.', 'gauge', [['', m.lastPollOk ? 1 : 0]]);
  metric('compliance_agent_cycle_duration_seconds', 'Duration of the last agent cycle.', 'gauge', [['', m.cycleDurationMs / 1000]]);
  metric('compliance_agent_cycles_total', 'Agent cycles since start.', 'counter', [['', m.cycles]]);
  metric('compliance_agent_chain_seq', 'Sequence number of the newest evidence bundle.', 'gauge', [['', m.chainSeq]]);
  metric('compliance_agent_bundles_created_total', 'Evidence bundles created since start.', 'counter', [['', m.bundlesCreated]]);
  metric('compliance_agent_orders_total', 'Orders by decision since start.', 'counter', [
    ['{decision="accepted"}', m.ordersAccepted],
    ['{decision="rejected"}', m.ordersRejected],
  ]);
  metric(
    'compliance_agent_queue_depth',
    'Undelivered outbox items per destination.',
    'gauge',
    m.queue.map((q) => [`{destination="${q.destination}"}`, q.pending]),
  );
  metric(
    'compliance_agent_queue_dead_letters',
    'Dead-lettered outbox items per destination.',
    'gauge',
    m.queue.map((q) => [`{destination="${q.destination}"}`, q.dead]),
  );
  metric(
    'compliance_agent_queue_oldest_age_seconds',
    'Age of the oldest undelivered item per destination.',
    'gauge',
    m.queue.map((q) => [`{destination="${q.destination}"}`, (q.oldestPendingAgeMs ?? 0) / 1000]),
  );
  const delivery = m.delivery ?? [];
  metric(
    'compliance_agent_delivery_failing',
    '1 while deliveries to the destination fail (retrying or dead-lettering).',
    'gauge',
    delivery.map((d) => [`{destination="${d.destination}"}`, d.failing ? 1 : 0]),
  );
  metric(
    'compliance_agent_delivery_failure_info',
    'The kind of the ongoing delivery failure per destination (connection_refused, tls, http_503, ...).',
    'gauge',
    delivery.filter((d) => d.failing).map((d) => [`{destination="${d.destination}",kind="${d.kind ?? 'other'}"}`, 1]),
  );
  metric(
    'compliance_agent_delivery_last_error_timestamp_seconds',
    'Time of the last failed delivery per destination (0: none yet).',
    'gauge',
    delivery.map((d) => [`{destination="${d.destination}"}`, (d.lastErrorAt ?? 0) / 1000]),
  );
  metric(
    'compliance_agent_check_status',
    'Last result per check: 0 compliant, 1 drift, 2 error.',
    'gauge',
    m.checks.map((c) => [`{check="${c.check}"}`, STATUS_VALUE[c.status]]),
  );
  if (m.controlPlane) {
    metric('compliance_agent_control_plane_signed_age_seconds', 'Age of the newest MSP-signed order (heartbeat) accepted.', 'gauge', [['', (m.controlPlane.ageMs ?? 0) / 1000]]);
    metric('compliance_agent_control_plane_stale', '1 when no MSP-signed order is newer than controlPlaneMaxAge.', 'gauge', [['', m.controlPlane.stale ? 1 : 0]]);
  }
  return lines.join('\n') + '\n';
}

export function writeMetrics(path: string, m: MetricsSnapshot): void {
  // 0644: node_exporter runs as another user and only needs to read numbers. Not fsynced: the file
  // is rewritten every cycle and is not state (a power loss costs at most the last cycle's
  // numbers, and the next cycle writes them again); the rename still keeps it whole for readers.
  writeFileAtomic(path, renderMetrics(m), 0o644, { durable: false });
}
