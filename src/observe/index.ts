export { writeMetrics, type MetricsSnapshot } from './metrics.js';
export { readStatus, formatStatus, type AgentStatus } from './status.js';
export { readDeliveryHealth, writeDeliveryHealth, nextDeliveryHealth, failureKind, type DeliveryHealth, type FlushOutcome } from './delivery-health.js';
export { controlPlaneView, WATCH_SINCE, type ControlPlaneView } from './control-plane.js';
