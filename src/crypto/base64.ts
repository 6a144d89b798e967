/**
 * Strict standard base64 (RFC 4648 section 4, padded). Node's decoder ignores the unused low bits of
 * the last character and accepts missing padding, so several strings decode to the same bytes
 * (`...HAR==` and `...HAQ==`); a signed envelope must have exactly one spelling, or a changed
 * envelope (another hash in the evidence chain, another body at the MCP) still verifies.
 */
export function decodeBase64Strict(text: string): Buffer | null {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return null;
  const buf = Buffer.from(text, 'base64');
  return buf.toString('base64') === text ? buf : null;
}

export function isCanonicalBase64(text: string): boolean {
  return decodeBase64Strict(text) !== null;
}
