import { clip } from '../common/text.js';

/**
 * What a long command is doing, on one rewritten line of stderr: only on a terminal, never in JSON
 * mode or when piped or logged (scripts and journald see only the command's result).
 */
export interface Progress {
  /** Replace the line (throttled to a few updates a second; `force` for a phase change). */
  show(text: string, force?: boolean): void;
  /** Redraw every `ms` from `read` until `clear`. */
  every(ms: number, read: () => string): void;
  /** Erase the line, before the command prints its result. */
  clear(): void;
}

const QUIET: Progress = { show: () => undefined, every: () => undefined, clear: () => undefined };

export function progress(options: { json?: unknown } = {}, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (options.json || !stream.isTTY) return QUIET;
  let last = 0;
  let shown = false;
  let timer: NodeJS.Timeout | null = null;
  const write = (text: string) => {
    const width = Math.max(20, (stream.columns || 80) - 1);
    stream.write(`\r\u001b[K${clip(text, width)}`);
    shown = true;
  };
  return {
    show(text, force = false) {
      const now = Date.now();
      if (!force && now - last < 100) return;
      last = now;
      write(text);
    },
    every(ms, read) {
      write(read());
      timer = setInterval(() => write(read()), ms);
      timer.unref();
    },
    clear() {
      if (timer) clearInterval(timer);
      timer = null;
      if (shown) stream.write('\r\u001b[K');
      shown = false;
    },
  };
}
