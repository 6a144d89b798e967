export { renderMetrics, writeMetrics, type MetricsSnapshot } from './metrics.js';
export { readStatus, formatStatus, type AgentStatus } from './status.js';
