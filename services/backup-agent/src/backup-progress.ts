import { engineBytesToCopy } from "@vmbs/virt";

/*
 * The progress of one engine run for whoever watches it (`vmbs backup` on a terminal): what the engine has written
 * (the data-file followers already count it, so this costs no I/O) against what it said it will copy, every few
 * seconds. Nothing waits on it: a lost message only makes a bar jump.
 */

export interface ProgressFigures {
  bytesDone: number;
  bytesTotal?: number;
  /** Bytes per second since the previous figures. */
  rate: number;
}

export interface ProgressReporter {
  /** Each engine log line: the per-disk "bytes … to backup" lines add up to the total. */
  onEngineLine(line: string): void;
  stop(): void;
}

/** Default period of the progress messages: often enough for a bar, rare enough to cost nothing. */
export const defaultProgressIntervalMs = 2_000;

export function reportProgress(o: { bytesSoFar: () => number; intervalMs: number; publish: (figures: ProgressFigures) => void }): ProgressReporter {
  let bytesTotal: number | undefined;
  let lastBytes = 0;
  let lastAt = Date.now();
  const timer = setInterval(() => {
    const bytesDone = o.bytesSoFar();
    const now = Date.now();
    const rate = Math.max(0, Math.round(((bytesDone - lastBytes) * 1000) / Math.max(1, now - lastAt)));
    lastBytes = bytesDone;
    lastAt = now;
    o.publish({ bytesDone, ...(bytesTotal !== undefined ? { bytesTotal } : {}), rate });
  }, o.intervalMs);
  // A run that ends between two ticks must not be held open by them.
  timer.unref();
  return {
    onEngineLine(line) {
      const disk = engineBytesToCopy(line);
      if (disk !== undefined) bytesTotal = (bytesTotal ?? 0) + disk;
    },
    stop: () => clearInterval(timer),
  };
}
