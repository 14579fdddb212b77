import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { redactUrl } from "./redact-url.js";

describe("redactUrl", () => {
  const rows: [string, string][] = [
    ["nats://vmbs:s3cret@nats.lan:4222", "nats://***@nats.lan:4222"],
    ["nats://tok3n@nats.lan", "nats://***@nats.lan"],
    ["tls://a:b@h1:4222,nats://c:d@h2", "tls://***@h1:4222,nats://***@h2"],
    ["nats://127.0.0.1:4222", "nats://127.0.0.1:4222"],
    ["connect to nats://u:p%40ss@h failed", "connect to nats://***@h failed"],
  ];
  for (const [url, shown] of rows) it(`shows ${url} as ${shown}`, () => assert.equal(redactUrl(url), shown));
});
