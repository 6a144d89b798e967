export { ConfigSchema, WINDOW_RE, UnitNameSchema, MAX_ORDER_TTL_S, type Config, type ConfigInput, type Baseline } from './schema.js';
export { loadConfig, parseConfig, loadBaseline, parseBaseline, explainIssues } from './load.js';
export { parseSyslogTarget, type SyslogTarget } from './syslog-target.js';
export { readWebhookSecret, readSyslogCa, readWebhookCa, assertSinkFiles } from './sink-files.js';
export { STORE_PATH_RE, PinnedFlakeRefSchema, RevisionSchema, StorePathSchema, parsePinnedFlakeRef, flakeSourceAllowed } from './nix-refs.js';
