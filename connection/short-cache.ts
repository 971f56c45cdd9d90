/**
 * Catalog answers kept for a short while, per key: a step or poll may run thousands of times, and
 * its table's shape rarely changes. A failed load is dropped at once; the oldest key goes past `max`.
 */
export function shortCache<T>(ttlMs: number, max = 1000) {
  const entries = new Map<string, { at: number; value: Promise<T> }>();
  return {
    get(key: string, load: () => Promise<T>): Promise<T> {
      const hit = entries.get(key);
      if (hit && Date.now() - hit.at < ttlMs) return hit.value;
      const value = load();
      entries.set(key, { at: Date.now(), value });
      value.catch(() => entries.delete(key));
      if (entries.size > max) entries.delete(entries.keys().next().value!);
      return value;
    },
    /** Drops one key: its answer was found stale where it was used. */
    forget: (key: string) => void entries.delete(key),
    clear: () => entries.clear(),
  };
}
