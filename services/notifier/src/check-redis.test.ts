import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { PassThrough } from "node:stream";
import { freePort, waitFor } from "@vmbs/lab";
import { createLogger } from "@vmbs/logger";
import { checkRedis, RedisUnavailableError } from "./check-redis.js";

describe("checkRedis against a real redis-server with a password holding , and @", () => {
  // Pieces that make up the password: none may reach an error message or a log line.
  const secretParts = ["s3c,ret", "p@rt"];
  const password = secretParts.join("@");
  let port: number;
  let redis: ChildProcess | undefined;

  before(async () => {
    port = await freePort();
    redis = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--requirepass", password, "--save", "", "--appendonly", "no"], { stdio: "ignore" });
    await waitFor(() => checkRedis(`redis://:${password}@127.0.0.1:${port}`).then(() => true), { timeoutMs: 10_000, what: "redis-server to answer" });
  });
  after(async () => {
    if (redis && redis.exitCode === null) {
      redis.kill("SIGTERM");
      await once(redis, "exit");
    }
  });

  /** What `vmbs serve` prints for a refusal: the error itself and its pino log line. */
  function shownForms(err: unknown): string {
    const sink = new PassThrough();
    let text = "";
    sink.on("data", (c: Buffer) => (text += c.toString("utf8")));
    createLogger({ name: "check-redis-test", stream: sink }).fatal({ err }, "start-up refused");
    const e = err as Error;
    return [text, String(e), e.stack, e.message, JSON.stringify(err)].join("\n");
  }

  const assertNoSecret = (shown: string): void => {
    for (const part of secretParts) assert.ok(!shown.includes(part), `${part} shown in:\n${shown}`);
  };

  it("answers with that password (the URL's last @ ends it)", async () => {
    await checkRedis(`redis://default:${password}@127.0.0.1:${port}/0`);
  });

  it("an unreachable REDIS_URL is refused without the password in the error, its url or its log line", async () => {
    redis!.kill("SIGTERM");
    await once(redis!, "exit");
    const err = await checkRedis(`redis://:${password}@127.0.0.1:${port}`, 2_000).then(
      () => assert.fail("redis-server is stopped"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof RedisUnavailableError);
    assert.equal(err.url, `redis://***@127.0.0.1:${port}`);
    assert.equal(err.message, `REDIS_URL redis://***@127.0.0.1:${port} is not reachable`);
    assertNoSecret(shownForms(err));
  });

  it("a REDIS_URL Node cannot parse (raw # in the password) is refused without the password in its log line", async () => {
    const err = await checkRedis(`redis://:ab#${password}@127.0.0.1:${port}`, 2_000).then(
      () => assert.fail("the URL is invalid"),
      (e: unknown) => e,
    );
    assert.match(String(err), /REDIS_URL redis:\/\/\*\*\*@127\.0\.0\.1:\d+ is not a valid URL/);
    assertNoSecret(shownForms(err));
  });
});
