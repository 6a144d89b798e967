/**
 * Clipping text for messages, logs and stored reasons. Syslog has its own, byte-bounded clip
 * (clipSdValue in src/outputs): RFC 5424 limits octets, not characters.
 */

/** One printable, bounded line of text that came from outside (a server body, an error message). */
export function oneLine(text: string, max = 200): string {
  const clean = text
    .replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

/** At most `max` characters (code points, never half a pair), `…` included when cut. */
export function clip(text: string, max: number): string {
  const chars = Array.from(text);
  return chars.length > max ? `${chars.slice(0, max - 1).join('')}…` : text;
}

/** The first line of command output that is not blank, trimmed; '' when there is none. */
export function firstLine(text: string): string {
  return (text.split('\n').find((l) => l.trim() !== '') ?? '').trim();
}
