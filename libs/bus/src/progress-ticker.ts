/*
 * The figures of ephemeral progress messages (`vmbs.progress.<service>.<host>`): every few seconds, how many bytes
 * a long piece of work has done of how many, and its rate since the previous figures. The work itself is never
 * waited on or slowed: `sample` reads counts something already keeps (a parser's last figure, a file's size).
 */

export interface ProgressFigures {
  bytesDone: number;
  bytesTotal?: number;
  /** Bytes per second since the previous figures. */
  rate: number;
}

/** How far a piece of work is, read when a tick comes; undefined = nothing to say yet. */
export type ProgressSample = () => Omit<ProgressFigures, "rate"> | undefined | Promise<Omit<ProgressFigures, "rate"> | undefined>;

/** Default period of the progress messages: often enough for a bar, rare enough to cost nothing. */
export const defaultProgressIntervalMs = 2_000;

export interface ProgressTicker {
  stop(): void;
}

/**
 * Calls `publish` every `intervalMs` with what `sample` says (undefined: nothing to say yet). An async sample still
 * running at the next tick makes that tick skip, so slow file systems never pile samples up.
 */
export function tickProgress(o: {
  sample: ProgressSample;
  intervalMs: number;
  publish: (figures: ProgressFigures) => void;
}): ProgressTicker {
  let lastBytes = 0;
  let lastAt = Date.now();
  let busy = false;
  let stopped = false;
  const tick = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    try {
      const s = await o.sample();
      if (!s || stopped) return;
      const now = Date.now();
      const rate = Math.max(0, Math.round(((s.bytesDone - lastBytes) * 1000) / Math.max(1, now - lastAt)));
      lastBytes = s.bytesDone;
      lastAt = now;
      o.publish({ bytesDone: s.bytesDone, ...(s.bytesTotal !== undefined ? { bytesTotal: s.bytesTotal } : {}), rate });
    } catch {
      // A sample that failed (a file not there yet) only skips a tick.
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void tick(), o.intervalMs);
  // A run that ends between two ticks must not be held open by them.
  timer.unref();
  return {
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}
