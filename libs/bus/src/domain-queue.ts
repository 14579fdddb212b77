/**
 * Serialises work per key inside one process: a second operation on the same domain waits for the first.
 * (Across processes the chain lease in NATS KV does this.)
 */
export function createDomainQueue() {
  const tails = new Map<string, Promise<unknown>>();
  return function runExclusive<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = tails.get(key) ?? Promise.resolve();
    const next = previous.then(work, work);
    const tail = next.catch(() => undefined);
    tails.set(key, tail);
    void tail.then(() => {
      if (tails.get(key) === tail) tails.delete(key);
    });
    return next;
  };
}
export type DomainQueue = ReturnType<typeof createDomainQueue>;
