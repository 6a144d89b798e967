/**
 * Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And Jitter"):
 * delay = random() * min(cap, base * 2^failures), where `failures` counts the failures before this
 * one. Full jitter spreads a fleet of appliances that lost the MCP at the same moment.
 */
export function backoffDelay(failuresBefore: number, baseMs: number, capMs: number, random: () => number): number {
  // 2^60 already dwarfs any cap; clamping keeps the arithmetic finite for absurd attempt counts.
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(failuresBefore, 60));
  return Math.floor(random() * ceiling);
}
