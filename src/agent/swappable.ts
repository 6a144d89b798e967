/**
 * A stand-in that forwards every property to the current target, so a component holding it sees
 * a replacement (the MCP client after a certificate renewal) without being rebuilt.
 */
export function swappable<T extends object>(initial: T): { readonly proxy: T; swap(next: T): T } {
  let current = initial;
  const proxy = new Proxy(initial, {
    get(_target, prop) {
      const value = Reflect.get(current, prop, current) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(current) : value;
    },
  });
  return {
    proxy,
    swap(next) {
      const old = current;
      current = next;
      return old;
    },
  };
}
