import { tickProgress, type ProgressFigures } from "@vmbs/bus";
import { engineBytesToCopy } from "@vmbs/virt";

/*
 * The progress of one engine run for whoever watches it (`vmbs backup` on a terminal): what the engine has written
 * (the data-file followers already count it, so this costs no I/O) against what it said it will copy, every few
 * seconds. Nothing waits on it: a lost message only makes a bar jump.
 */

export { defaultProgressIntervalMs, type ProgressFigures } from "@vmbs/bus";

export interface ProgressReporter {
  /** Each engine log line: the per-disk "bytes … to backup" lines add up to the total. */
  onEngineLine(line: string): void;
  stop(): void;
}

export function reportProgress(o: { bytesSoFar: () => number; intervalMs: number; publish: (figures: ProgressFigures) => void }): ProgressReporter {
  let bytesTotal: number | undefined;
  const ticker = tickProgress({ sample: () => ({ bytesDone: o.bytesSoFar(), ...(bytesTotal !== undefined ? { bytesTotal } : {}) }), intervalMs: o.intervalMs, publish: o.publish });
  return {
    onEngineLine(line) {
      const disk = engineBytesToCopy(line);
      if (disk !== undefined) bytesTotal = (bytesTotal ?? 0) + disk;
    },
    stop: () => ticker.stop(),
  };
}
