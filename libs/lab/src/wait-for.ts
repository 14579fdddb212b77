/** Options for {@link waitFor}. */
export interface WaitForOptions {
  /** Give up after this many milliseconds. Default 10000. */
  timeoutMs?: number;
  /** Pause between attempts in milliseconds. Default 100. */
  intervalMs?: number;
  /** What is awaited, for the timeout message. Default "condition". */
  what?: string;
}

/**
 * Calls `fn` until it returns a truthy value and resolves with that value.
 * A throwing `fn` counts as "not yet"; on timeout the last thrown error becomes the `cause`.
 */
export async function waitFor<T>(
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  opts: WaitForOptions = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const intervalMs = opts.intervalMs ?? 100;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const what = opts.what ?? "condition";
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: lastError });
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
