export type { Host, ExecResult, ExecStatus, ExecOptions, ReadResult, FileStat } from './host.js';
