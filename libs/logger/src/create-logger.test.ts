import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { createLogger } from "./create-logger.js";

describe("log lines never carry secrets", () => {
  it("hides credentials in URL fields and masks secret fields", () => {
    let out = "";
    const stream = new Writable({ write: (chunk, _e, cb) => ((out += String(chunk)), cb()) });
    const logger = createLogger({ name: "t", stream });
    logger.info({ url: "nats://vmbs:pw-1@h:4222", config: { NATS_URL: "nats://tok-2@h", NATS_PASSWORD: "pw-3", NATS_TOKEN: "tok-4" } }, "x");
    logger.info({ auth: { seed: "SUAB-5", pass: "pw-6", token: "tok-7" } }, "y");
    for (const secret of ["pw-1", "tok-2", "pw-3", "tok-4", "SUAB-5", "pw-6", "tok-7"]) assert.ok(!out.includes(secret), secret);
    assert.match(out, /"url":"nats:\/\/\*\*\*@h:4222"/);
    assert.match(out, /"NATS_URL":"nats:\/\/\*\*\*@h"/);
  });
});

describe("console lines", () => {
  const sink = () => {
    const s = { out: "", stream: new Writable({ write: (chunk, _e, cb) => ((s.out += String(chunk)), cb()) }) };
    return s;
  };
  it("are lines a person reads when pretty, still without secrets, while the file keeps JSON", async () => {
    const { mkdtemp, readFile, rm } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const dir = await mkdtemp(join(tmpdir(), "vmbs-log-"));
    try {
      const console = sink();
      const file = join(dir, "vmbs.log");
      const { createProcessLogger } = await import("./create-logger.js");
      const { logger } = createProcessLogger({ name: "t", stream: console.stream, pretty: true, file });
      logger.info({ url: "nats://vmbs:pw-1@h:4222", domain: "web" }, "backup completed");
      logger.flush();
      // Colours (unless NO_COLOR) wrap the level and the message: matched without them.
      const shown = console.out.replace(/\x1b\[[0-9;]*m/g, "");
      assert.doesNotMatch(shown, /^\{/m, "no JSON on the console");
      assert.match(shown, /INFO.*backup completed/);
      assert.match(shown, /"domain":"web"/);
      assert.match(shown, /nats:\/\/\*\*\*@h:4222/);
      assert.ok(!shown.includes("pw-1"));
      const line = JSON.parse((await readFile(file, "utf8")).trim()) as { msg: string; domain: string };
      assert.deepEqual([line.msg, line.domain], ["backup completed", "web"]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
  it("are JSON on a stream that is not a terminal", () => {
    const console = sink();
    createLogger({ name: "t", stream: console.stream }).info({ domain: "web" }, "x");
    assert.deepEqual(JSON.parse(console.out), { ...JSON.parse(console.out), level: 30, msg: "x", domain: "web" });
  });
});
