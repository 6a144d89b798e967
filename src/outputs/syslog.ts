import type { DeliveryResult, OutboxItem } from '../queue/index.js';
import { decodeQueuedBundle } from './queued-bundle.js';
import { SyslogConnection, type SyslogConnectionOptions } from './syslog-connection.js';
import { octetFrame } from './syslog-format.js';
import { syslogMessage } from './syslog-message.js';

export interface SyslogSinkOptions extends SyslogConnectionOptions {
  /** PROCID of the messages. Default: this process's pid. */
  readonly procId?: string;
}

/**
 * Syslog to the reseller's SIEM: one RFC 5424 message per bundle, octet-counted (RFC 6587) on a
 * TCP or TLS (RFC 5425) stream. A batch is written in queue order; frames the kernel took are
 * delivered, the first one it did not take retries and the rest wait behind it.
 */
export class SyslogSink {
  private readonly connection: SyslogConnection;
  private readonly procId: string;

  constructor(opts: SyslogSinkOptions) {
    this.connection = new SyslogConnection(opts);
    this.procId = opts.procId ?? String(process.pid);
  }

  readonly deliver = async (items: readonly OutboxItem[]): Promise<DeliveryResult[]> => {
    const results = new Array<DeliveryResult>(items.length);
    const frames: Buffer[] = [];
    const positions: number[] = [];
    items.forEach((item, i) => {
      const decoded = decodeQueuedBundle(item.body);
      if (!decoded.ok) {
        results[i] = { kind: 'reject', reason: decoded.reason };
        return;
      }
      let message: Buffer;
      try {
        message = syslogMessage(decoded.bundle, this.procId);
      } catch (e) {
        // Formatting is deterministic: retrying would only block the queue behind this bundle.
        results[i] = { kind: 'reject', reason: `cannot format as syslog: ${(e as Error).message}` };
        return;
      }
      frames.push(octetFrame(message));
      positions.push(i);
    });
    if (frames.length === 0) return results;
    const { written, error } = await this.connection.write(frames);
    const receipt = `written to ${this.connection.endpoint}`;
    positions.forEach((at, k) => {
      if (k < written) results[at] = { kind: 'ok', receiptId: receipt };
      else if (k === written) results[at] = { kind: 'retry', error: `syslog: ${error ?? 'not written'}` };
      else results[at] = { kind: 'retry', error: `not sent: waiting behind bundle ${items[positions[written]!]!.bundleId}` };
    });
    return results;
  };

  close(): void {
    this.connection.close();
  }
}
