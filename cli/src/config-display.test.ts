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

describe("config error lines", () => {
  it("show the given value once, after what is expected", () => {
    const env = { VMBS_LOCAL_NATS_PORT: "abc", VMBS_INSECURE_BUS: "maybe", BACKUP_SCHEDULE: "every day", TZ: "Mars/Olympus", VM_IGNORED_LIST: '"unclosed' };
    const lines = linesFor(env);
    assert.equal(lines.length, Object.keys(env).length, lines.join("\n"));
    for (const [setting, value] of Object.entries(env)) {
      const line = lines.find((l) => l.startsWith(`vmbs: invalid configuration: ${setting}: `));
      assert.ok(line, `no line for ${setting}: ${lines.join("\n")}`);
      assert.equal(line.split(JSON.stringify(value)).length - 1, 1, line);
      assert.ok(line.endsWith(`(got ${JSON.stringify(value)})`), line);
    }
  });
});
