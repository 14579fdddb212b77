import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { reportProgress, type ProgressFigures } from "./backup-progress.js";

/* The progress figures of one engine run: written bytes, the total the engine announced per disk, the rate. */

const engineLine = (disk: string, message: string) => `[2026-11-26 02:34:52] INFO root virtnbdbackup - backupDisk [${disk}]: ${message}`;

describe("backup progress figures", () => {
  it("adds up each disk's announced bytes, counts what was written and its rate, and stops", async () => {
    let written = 0;
    const sent: ProgressFigures[] = [];
    const reporter = reportProgress({ bytesSoFar: () => written, intervalMs: 100, publish: (f) => sent.push(f) });
    await sleep(150);
    assert.equal(sent[0]?.bytesTotal, undefined, "no total before the engine said one");
    reporter.onEngineLine(engineLine("sda", "Got 3 extents to backup."));
    reporter.onEngineLine(engineLine("sda", "2097152 bytes of data extents to backup"));
    reporter.onEngineLine(engineLine("sdb", "1048576 bytes of data extents to backup"));
    written = 1_000_000;
    await sleep(120);
    const last = sent.at(-1)!;
    assert.equal(last.bytesDone, 1_000_000);
    assert.equal(last.bytesTotal, 3_145_728);
    // About 1 MB over about 100 ms: some MB/s, surely not 0 and not the whole count as if per millisecond.
    assert.ok(last.rate > 1_000_000 && last.rate < 20_000_000, String(last.rate));
    await sleep(120);
    assert.equal(sent.at(-1)!.rate, 0, "nothing more written: no rate");
    reporter.stop();
    const count = sent.length;
    await sleep(250);
    assert.equal(sent.length, count, "no figures after stop");
  });
});
