/**
 * The code of a failed system call (ENOENT, EACCES…; SQLite's SQLITE_* too), or `fallback` when
 * the error carries none. Messages put it in parentheses: never the path's contents.
 */
export function errnoCode(e: unknown): string | undefined;
export function errnoCode(e: unknown, fallback: string): string;
export function errnoCode(e: unknown, fallback?: string): string | undefined {
  const code = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : fallback;
}
