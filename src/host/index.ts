export type { Host, ExecResult, ExecStatus, ExecOptions, ReadResult, FileStat } from './host.js';
export { RealHost, REBUILD_ENV, type RealHostOptions } from './real-host.js';
export { readFileBounded, DEFAULT_MAX_READ_BYTES } from './fs-read.js';
export * from './simulated/index.js';
