export { createSinks, type Sinks, type SinkDestination, type SinkOverrides } from './sinks.js';
export { WebhookSink, type WebhookSinkOptions } from './webhook.js';
export { webhookPayload, WEBHOOK_EVENT_TYPE, type WebhookPayload } from './webhook-payload.js';
export { signWebhook } from './webhook-signature.js';
export { SyslogSink, type SyslogSinkOptions } from './syslog.js';
export { syslogMessage, SEVERITY, SYSLOG_FACILITY, SYSLOG_APP_NAME, EVIDENCE_SD_ID } from './syslog-message.js';
export { formatRfc5424, escapeSdValue, formatStructuredData, octetFrame, MAX_MESSAGE_OCTETS, type Rfc5424Message, type SdElement } from './syslog-format.js';
export { summarize, type EvidenceSummary } from './summary.js';
export { decodeQueuedBundle } from './queued-bundle.js';
