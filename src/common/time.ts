/** UTC with whole seconds (`2026-11-23T12:00:00Z`), as evidence bundles write times (docs/evidence.md). */
export function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
