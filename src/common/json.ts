/**
 * JSON.parse for text read from a file or a peer, failing with where the syntax breaks, never
 * what: V8's SyntaxError quotes the text around the fault, so a path that points at a key or a
 * secret file by mistake would put its first bytes (or raw control characters) in the error line.
 */
export function parseJsonText(text: string): { ok: true; value: unknown } | { ok: false; message: string } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (e) {
    const at = /at position (\d+)/.exec(e instanceof Error ? e.message : '');
    return { ok: false, message: at ? `not valid JSON (syntax error at character ${at[1]})` : 'not valid JSON' };
  }
}
