import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { displayValue, redactUrl } from "./redact.js";
import { loadConfig } from "./load-config.js";

describe("secrets in settings", () => {
  const rows: [string, string][] = [
    ["nats://vmbs:s3cret@nats.lan:4222", "nats://***@nats.lan:4222"],
    ["nats://tok3n@nats.lan", "nats://***@nats.lan"],
    ["tls://a:b@h1:4222,nats://c:d@h2", "tls://***@h1:4222,nats://***@h2"],
    ["nats://127.0.0.1:4222", "nats://127.0.0.1:4222"],
    ["connect to nats://u:p%40ss@h failed", "connect to nats://***@h failed"],
  ];
  for (const [url, shown] of rows) it(`shows ${url} as ${shown}`, () => assert.equal(redactUrl(url), shown));
  it("masks secret settings whole", () => {
    assert.equal(displayValue("NATS_PASSWORD", "pw"), "***");
    assert.equal(displayValue("NATS_TOKEN", "t"), "***");
    assert.equal(displayValue("HOST_ID", "hv1"), "hv1");
  });
  it("reads the credential settings; a relative file path names the setting", () => {
    const config = loadConfig({ NATS_NKEY_SEED: "/auth/agent.nk", NATS_USER: "u", NATS_PASSWORD: "p", NATS_TLS_CA: " " });
    assert.equal(config.NATS_NKEY_SEED, "/auth/agent.nk");
    assert.equal(config.NATS_PASSWORD, "p");
    assert.equal(config.NATS_TLS_CA, undefined);
    assert.throws(() => loadConfig({ NATS_CREDS: "user.creds" }), /NATS_CREDS: expected an absolute path/);
  });
});
