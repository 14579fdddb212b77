import * as assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { test } from "node:test";
import { startTestNats, startTestRedis, waitFor } from "./index.js";

/** Collects what a socket sends until `done(text)` holds. */
function readUntil(socket: Socket, done: (text: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      text += chunk;
      if (done(text)) resolve(text);
    });
    socket.on("error", reject);
    socket.on("close", () => reject(new Error(`closed after ${JSON.stringify(text)}`)));
  });
}

test("startTestNats serves NATS with JetStream on a random port", async () => {
  const nats = await startTestNats();
  try {
    const { hostname, port } = new URL(nats.url);
    assert.equal(hostname, "127.0.0.1");
    const socket = connect(Number(port), hostname);
    try {
      const info = await readUntil(socket, (t) => t.includes("\r\n"));
      assert.match(info, /^INFO \{/);
      assert.equal(JSON.parse(info.slice(5, info.indexOf("\r\n"))).jetstream, true);
    } finally {
      socket.destroy();
    }
  } finally {
    await nats.stop();
    await nats.stop(); // idempotent
  }
});

test("startTestRedis answers PING on its unix socket and stop removes it", async () => {
  const redis = await startTestRedis();
  try {
    assert.ok(existsSync(redis.socketPath));
    const socket = connect(redis.socketPath);
    try {
      socket.write("PING\r\n");
      assert.match(await readUntil(socket, (t) => t.includes("\r\n")), /^\+PONG\r\n/);
    } finally {
      socket.destroy();
    }
  } finally {
    await redis.stop();
  }
  assert.equal(existsSync(redis.socketPath), false);
});

test("waitFor returns the first truthy value and times out with the last error as cause", async () => {
  let calls = 0;
  assert.equal(await waitFor(() => (++calls >= 3 ? "ok" : false), { intervalMs: 1 }), "ok");
  await assert.rejects(
    waitFor(
      () => {
        throw new Error("boom");
      },
      { timeoutMs: 50, intervalMs: 10, what: "the thing" },
    ),
    (err: Error) => /the thing/.test(err.message) && (err.cause as Error).message === "boom",
  );
});
