export type { Host, ExecResult, ExecStatus, ExecOptions, ReadResult, FileStat } from './host.js';
export { RealHost, REBUILD_ENV, type RealHostOptions } from './real-host.js';
// statPath and linkTarget: a stand-in host describes its files exactly as the real one does.
export { readFileBounded, statPath, linkTarget, DEFAULT_MAX_READ_BYTES } from './fs-read.js';
