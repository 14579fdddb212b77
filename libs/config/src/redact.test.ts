import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { displayValue } from "./redact.js";
import { loadConfig } from "./load-config.js";

describe("secrets in settings", () => {
  it("masks secret settings whole", () => {
    assert.equal(displayValue("NATS_PASSWORD", "pw"), "***");
    assert.equal(displayValue("NATS_TOKEN", "t"), "***");
    assert.equal(displayValue("HOST_ID", "hv1"), "hv1");
    assert.equal(displayValue("NATS_URL", "nats://u:p@h"), "nats://***@h");
  });
  it("names a bad setting without showing its credentials", () => {
    assert.throws(
      () => loadConfig({ RSYNC_BACKUP_PATH: "sftp://u:pw-9@h/backups" }),
      (err: Error) => err.message.includes('RSYNC_BACKUP_PATH') && err.message.includes('"sftp://***@h/backups"') && !err.message.includes("pw-9"),
    );
  });
  it("reads the credential settings; a relative file path names the setting", () => {
    const config = loadConfig({ NATS_NKEY_SEED: "/auth/agent.nk", NATS_USER: "u", NATS_PASSWORD: "p", NATS_TLS_CA: " " });
    assert.equal(config.NATS_NKEY_SEED, "/auth/agent.nk");
    assert.equal(config.NATS_PASSWORD, "p");
    assert.equal(config.NATS_TLS_CA, undefined);
    assert.throws(() => loadConfig({ NATS_CREDS: "user.creds" }), /NATS_CREDS: expected an absolute path/);
  });
});
