/**
 * RFC 5424 message formatting and RFC 6587 octet-counting framing. Written here because none of
 * the npm syslog clients does octet counting with structured data and a per-message write
 * confirmation under an open licence; the format is small, and the tests parse it with rsyslog.
 */
import { AgentError } from '../common/index.js';

export interface SdElement {
  /** SD-ID: an IANA-registered name (`origin`) or `name@<private enterprise number>`. */
  readonly id: string;
  readonly params: readonly (readonly [name: string, value: string])[];
}

export interface Rfc5424Message {
  /** 0-23; PRI = facility * 8 + severity. */
  readonly facility: number;
  /** 0 emerg … 7 debug. */
  readonly severity: number;
  readonly timestamp: Date | null;
  readonly hostname: string;
  readonly appName: string;
  readonly procId: string;
  readonly msgId: string;
  readonly structuredData: readonly SdElement[];
  readonly message: string;
}

/** RFC 5425 4.3.1: every receiver must take 2048 octets; staying inside that needs no tuning there. */
export const MAX_MESSAGE_OCTETS = 2048;
const NIL = '-';
const BOM = '\uFEFF';
const SD_NAME = /^[\x21-\x7e]{1,32}$/;

/** A header field: PRINTUSASCII only, bounded, NILVALUE when empty (RFC 5424 6.2). */
function headerField(value: string, max: number): string {
  const printable = value.replace(/[^\x21-\x7e]/g, '_').slice(0, max);
  return printable.length === 0 ? NIL : printable;
}

function sdName(name: string): string {
  if (!SD_NAME.test(name) || /[= \]"]/.test(name)) throw new AgentError('syslog_format', `invalid SD name ${JSON.stringify(name)}`);
  return name;
}

/** PARAM-VALUE escaping (RFC 5424 6.3.3): `"`, `\` and `]` take a backslash. */
export function escapeSdValue(value: string): string {
  return value.replace(/[\\"\]]/g, (c) => `\\${c}`);
}

/** The longest prefix of `value` whose escaped UTF-8 form fits in `maxOctets`, cut at a character. */
export function clipSdValue(value: string, maxOctets: number): string {
  let out = '';
  let used = 0;
  for (const ch of value) {
    const n = ch === '"' || ch === '\\' || ch === ']' ? 2 : Buffer.byteLength(ch);
    if (used + n > maxOctets) break;
    out += ch;
    used += n;
  }
  return out;
}

export function formatStructuredData(elements: readonly SdElement[]): string {
  if (elements.length === 0) return NIL;
  return elements.map((e) => `[${sdName(e.id)}${e.params.map(([n, v]) => ` ${sdName(n)}="${escapeSdValue(v)}"`).join('')}]`).join('');
}

/** TIMESTAMP: RFC 3339 in UTC with at most 6 fractional digits (toISOString gives 3). */
function timestamp(t: Date | null): string {
  return t === null || Number.isNaN(t.getTime()) ? NIL : t.toISOString();
}

/** The longest prefix of `text` whose UTF-8 encoding fits in `budget` bytes, cut at a character. */
function fitUtf8(text: string, budget: number): string {
  if (Buffer.byteLength(text) <= budget) return text;
  let out = '';
  let used = 0;
  for (const ch of text) {
    const n = Buffer.byteLength(ch);
    if (used + n > budget) break;
    out += ch;
    used += n;
  }
  return out;
}

/**
 * One RFC 5424 message as bytes, at most `maxOctets` long: MSG is cut to fit. An ASCII MSG goes as
 * is (MSG-ANY); anything else is MSG-UTF8, which the RFC says must start with a BOM. Control
 * characters in MSG become spaces so line-oriented SIEM views stay one line per message.
 */
export function formatRfc5424(m: Rfc5424Message, maxOctets = MAX_MESSAGE_OCTETS): Buffer {
  if (!Number.isInteger(m.facility) || m.facility < 0 || m.facility > 23) throw new AgentError('syslog_format', `facility ${m.facility} is outside 0-23`);
  if (!Number.isInteger(m.severity) || m.severity < 0 || m.severity > 7) throw new AgentError('syslog_format', `severity ${m.severity} is outside 0-7`);
  const head =
    `<${m.facility * 8 + m.severity}>1 ${timestamp(m.timestamp)} ${headerField(m.hostname, 255)} ${headerField(m.appName, 48)} ` +
    `${headerField(m.procId, 128)} ${headerField(m.msgId, 32)} ${formatStructuredData(m.structuredData)}`;
  const text = m.message.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ');
  if (text.length === 0) return Buffer.from(head);
  const ascii = /^[\x00-\x7f]*$/.test(text);
  const prefix = ` ${ascii ? '' : BOM}`;
  const budget = maxOctets - Buffer.byteLength(head) - Buffer.byteLength(prefix);
  if (budget <= 0) throw new AgentError('syslog_format', `syslog header and structured data exceed ${maxOctets} octets`);
  return Buffer.from(`${head}${prefix}${fitUtf8(text, budget)}`);
}

/** RFC 6587 3.4.1 octet counting: MSG-LEN SP SYSLOG-MSG, the length in octets. */
export function octetFrame(message: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${message.length} `), message]);
}
