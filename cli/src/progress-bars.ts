import { MultiBar, Presets } from "cli-progress";
import { size } from "./human-format.js";

/*
 * Progress bars of the runs a command waits for (one per run: `vmbs backup --all` may run several domains), drawn
 * by cli-progress on a terminal, with the command's event lines written above them.
 */

export interface RunFigures {
  bytesDone: number;
  bytesTotal?: number;
  /** Bytes per second. */
  rate: number;
}

export interface ProgressBars {
  /** Draws or moves the bar of run `runId`, named `label`. */
  update(runId: string, label: string, figures: RunFigures): void;
  /** Takes the bar of a run that is over away (its final event line says how it ended). */
  end(runId: string): void;
  /** Writes one line above the bars. */
  line(text: string): void;
  /** Takes every bar away; call once the command is done. */
  close(): void;
}

export function progressBars(stream: NodeJS.WriteStream): ProgressBars {
  const multi = new MultiBar(
    {
      stream,
      // The figures before the bar: a narrow terminal cuts the line's end, and the bar is what may go.
      format: "{label}  {done} of {whole} · {speed}  {bar} {percentage}%",
      clearOnComplete: true,
      barsize: 30,
      // A cursor hidden (or line wrapping turned off) by a command that Ctrl-C ends would stay so in the terminal;
      // cli-progress's own SIGINT handler would keep the process from ending. `linewrap: true` leaves wrapping on
      // and cuts each bar line to the terminal's width instead.
      hideCursor: false,
      linewrap: true,
      gracefulExit: false,
    },
    Presets.shades_classic,
  );
  const bars = new Map<string, ReturnType<MultiBar["create"]>>();
  return {
    update(runId, label, f) {
      // An unknown total (the engine has not said it yet) draws an empty bar and "?"; more done than said (the
      // data files' stream headers) fills it.
      const known = f.bytesTotal !== undefined;
      const total = known ? Math.max(f.bytesTotal!, f.bytesDone, 1) : 1;
      const value = known ? f.bytesDone : 0;
      const payload = { label, done: size(f.bytesDone), whole: known ? size(f.bytesTotal!) : "?", speed: `${size(f.rate)}/s` };
      const bar = bars.get(runId);
      if (!bar) return void bars.set(runId, multi.create(total, value, payload));
      bar.setTotal(total);
      bar.update(value, payload);
    },
    end(runId) {
      const bar = bars.get(runId);
      if (!bar) return;
      bars.delete(runId);
      if (bars.size === 0) multi.stop();
      else multi.remove(bar);
    },
    line(text) {
      if (bars.size === 0) return void stream.write(`${text}\n`);
      multi.log(`${text}\n`);
      multi.update();
    },
    close() {
      if (bars.size === 0) return;
      bars.clear();
      multi.stop();
    },
  };
}
