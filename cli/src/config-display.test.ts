import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ConfigError, loadConfig } from "@vmbs/config";
import { configErrorLines } from "./exit-reasons.js";

/** The stderr lines of loadConfigOrExit for `env`. */
function linesFor(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return configErrorLines(err, env);
    throw err;
  }
  assert.fail("expected a ConfigError");
}

describe("secrets in config errors", () => {
  it("masks secret settings whole", () => {
    // A secret setting that fails validation never reaches the line unmasked.
    assert.deepEqual(configErrorLines(new ConfigError([{ setting: "NATS_TOKEN", expected: "x" }]), { NATS_TOKEN: "t0k" }), ['vmbs: invalid configuration: NATS_TOKEN: x (got "***")']);
  });
  it("names a bad setting without showing its credentials", () => {
    const [line] = linesFor({ RSYNC_BACKUP_PATH: "sftp://u:pw-9@h/backups" });
    assert.ok(line!.includes("RSYNC_BACKUP_PATH") && line!.includes('"sftp://***@h/backups"') && !line!.includes("pw-9"), line);
  });
  it("hides a NATS_URL's password", () => {
    assert.match(linesFor({ NATS_URL: "http://admin:s3cret@nats:4222" })[0]!, /^vmbs: invalid configuration: NATS_URL: expected .*\(got "http:\/\/\*\*\*@nats:4222"\)$/);
  });
  it("shows notification URLs by scheme and host only", () => {
    const [line] = linesFor({ NOTIFY_URLS: "json://h/p smtp://u:SECRET@mail?to=x@y" });
    assert.ok(line!.startsWith("vmbs: invalid configuration: NOTIFY_URLS: smtp://mail/***: from=ADDRESS is required") && !line!.includes("SECRET"), line);
  });
});
