import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { redactUrl } from "./redact-url.js";

describe("redactUrl", () => {
  const rows: [string, string][] = [
    ["nats://vmbs:s3cret@nats.lan:4222", "nats://***@nats.lan:4222"],
    ["nats://tok3n@nats.lan", "nats://***@nats.lan"],
    ["tls://a:b@h1:4222,nats://c:d@h2", "tls://***@h1:4222,nats://***@h2"],
    ["nats://127.0.0.1:4222", "nats://127.0.0.1:4222"],
    ["nats://h1:4222,nats://h2:4222", "nats://h1:4222,nats://h2:4222"],
    ["connect to nats://u:p%40ss@h failed", "connect to nats://***@h failed"],
    // Raw characters a password may hold: each used to leave (part of) the password in the line.
    ["redis://:pa,ss@127.0.0.1:6379", "redis://***@127.0.0.1:6379"],
    ["redis://user:p@ss@127.0.0.1:6379/0", "redis://***@127.0.0.1:6379/0"],
    ["redis://:a,b@c@h:1", "redis://***@h:1"],
    ["REDIS_URL redis://:x@y,z@h:6379 is not reachable", "REDIS_URL redis://***@h:6379 is not reachable"],
    ["redis://:pa#ss@h:6379", "redis://***@h:6379"],
    ["redis://:pa?ss@h:6379", "redis://***@h:6379"],
    ["redis://u:ab/cd+ef==@h:6379", "redis://***@h:6379"],
    ["nats://u:a,b@h1:4222,nats://v:c@d@h2", "nats://***@h1:4222,nats://***@h2"],
    ["rediss://:pw@h and nats://t@n", "rediss://***@h and nats://***@n"],
    ["unix:///run/redis.sock", "unix:///run/redis.sock"],
  ];
  for (const [url, shown] of rows) it(`shows ${url} as ${shown}`, () => assert.equal(redactUrl(url), shown));
});
