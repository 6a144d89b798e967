export { createSinks, type Sinks, type SinkDestination, type SinkOverrides } from './sinks.js';
export { WebhookSink, type WebhookSinkOptions } from './webhook.js';
export { webhookPayload, type WebhookPayload } from './webhook-payload.js';
export { signWebhook } from './webhook-signature.js';
export { SyslogSink, type SyslogSinkOptions } from './syslog.js';
export { syslogMessage } from './syslog-message.js';
export { formatRfc5424, escapeSdValue, formatStructuredData, octetFrame, MAX_MESSAGE_OCTETS, type Rfc5424Message, type SdElement } from './syslog-format.js';
export type { EvidenceSummary } from './summary.js';
export { decodeQueuedBundle } from './queued-bundle.js';
