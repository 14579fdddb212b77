import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { Writable } from "node:stream";
import { createProcessLogger } from "./create-logger.js";
import { parseRotationSettings, rotateLogFile } from "./log-rotation.js";

const seedDefault = "compress\ncopytruncate\ndaily\ndateext\ndateformat .%Y-%m-%d.%H:%M:%S\nmissingok\nnotifempty\nrotate 30";
const sink = () => new Writable({ write: (_c, _e, cb) => cb() });

describe("log rotation", () => {
  it("reads the seed's default stanza", () => {
    assert.deepEqual(parseRotationSettings(seedDefault), { keep: 30, compress: true, notIfEmpty: true, dateFormat: ".%Y-%m-%d.%H:%M:%S" });
  });

  it("rotates a live log: the old lines are gzipped under a dated name, new lines go to a fresh file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vmbs-log-"));
    try {
      const file = join(dir, "vm-babysitter.log");
      const { logger, reopenFile } = createProcessLogger({ name: "t", file, stream: sink() });
      logger.info("before rotation");
      const rotated = await rotateLogFile(file, parseRotationSettings(seedDefault), reopenFile, new Date(2026, 10, 26, 3, 4, 5));
      logger.info("after rotation");
      assert.equal(rotated, `${file}.2026-11-26.03:04:05.gz`);
      assert.match(gunzipSync(await readFile(rotated!)).toString(), /before rotation/);
      const fresh = await readFile(file, "utf8");
      assert.match(fresh, /after rotation/);
      assert.doesNotMatch(fresh, /before rotation/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("keeps only `rotate N` copies and skips an empty log with notifempty", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vmbs-log-"));
    try {
      const file = join(dir, "a.log");
      const settings = parseRotationSettings("rotate 2\nnotifempty\ndateformat .%s");
      for (let i = 1; i <= 4; i++) {
        await writeFile(file, `line ${i}\n`);
        await rotateLogFile(file, settings, () => undefined, new Date(1_800_000_000_000 + i * 1000));
      }
      assert.deepEqual((await readdir(dir)).sort(), ["a.log.1800000003", "a.log.1800000004"]);
      await writeFile(file, "");
      assert.equal(await rotateLogFile(file, settings, () => undefined), undefined);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
