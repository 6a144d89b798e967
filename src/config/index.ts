export { ConfigSchema, BaselineSchema, WINDOW_RE, TRUSTED_KEY_RE, UNIT_NAME_RE, UnitNameSchema, type Config, type ConfigInput, type Baseline } from './schema.js';
export { loadConfig, parseConfig, loadBaseline, parseBaseline, explainIssues } from './load.js';
export { parseSyslogTarget, type SyslogTarget } from './syslog-target.js';
export { readWebhookSecret, readSyslogCa, readWebhookCa, sinkFileProblems, assertSinkFiles } from './sink-files.js';
export {
  FLAKE_REF_RE,
  REV_RE,
  STORE_PATH_RE,
  FlakeRefSyntaxSchema,
  PinnedFlakeRefSchema,
  FlakePrefixSchema,
  RevisionSchema,
  StorePathSchema,
  SubstituterSchema,
  parsePinnedFlakeRef,
  parseFlakePrefix,
  flakeSourceAllowed,
  type PinnedFlakeRef,
} from './nix-refs.js';
