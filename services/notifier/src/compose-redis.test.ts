import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { waitFor } from "@vmbs/lab";
import { checkRedis } from "./check-redis.js";
import { redisOptions } from "./delivery-queue.js";

const composeFile = fileURLToPath(new URL("../../../docker-compose.yml", import.meta.url));

/** The lines of one service of docker-compose.yml (its name indented by 2, its settings deeper). */
function serviceLines(compose: string, name: string): string[] {
  const lines = compose.split("\n");
  const start = lines.indexOf(`  ${name}:`);
  assert.ok(start >= 0, `no service ${name} in docker-compose.yml`);
  const end = lines.findIndex((l, i) => i > start && /^ {0,2}\S/.test(l));
  return lines.slice(start + 1, end < 0 ? undefined : end);
}

/** Named volume → where the service mounts it. */
function namedMounts(service: string[]): Map<string, string> {
  const mounts = new Map<string, string>();
  for (const line of service) {
    const m = /^\s+- "?([a-z][\w-]*):(\/[^:"]*)/.exec(line);
    if (m) mounts.set(m[1]!, m[2]!);
  }
  return mounts;
}

// The compose file cannot run here (no docker engine); its Redis arguments and the notifier's REDIS_URL are run
// as written, with each container path of their shared volume mapped to one temp folder.
describe("docker-compose.yml: the notify profile's Redis", () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it("listens on no TCP port and no network, and the notifier's REDIS_URL reaches it through the volume they share", async () => {
    const compose = await readFile(composeFile, "utf8");
    const redisService = serviceLines(compose, "redis");
    const notifierService = serviceLines(compose, "notifier");
    assert.ok(redisService.includes("    network_mode: none"), "the Redis container has no network");

    const command = JSON.parse(/^\s+command: (\[.*\])$/m.exec(redisService.join("\n"))?.[1] ?? "[]") as string[];
    assert.equal(command[0], "redis-server");
    const redisUrl = /REDIS_URL: "\$\{REDIS_URL:-(.+)\}"/.exec(notifierService.join("\n"))?.[1];
    assert.ok(redisUrl, "the notifier's REDIS_URL default");
    const redisMounts = namedMounts(redisService);
    const notifierMounts = namedMounts(notifierService);
    const shared = [...redisMounts.keys()].find((v) => notifierMounts.has(v));
    assert.ok(shared, "a volume both the Redis and the notifier mount");

    const volume = await mkdtemp(join(tmpdir(), "vmbs-compose-volume-"));
    const data = await mkdtemp(join(tmpdir(), "vmbs-compose-data-"));
    cleanups.push(() => rm(volume, { recursive: true, force: true }), () => rm(data, { recursive: true, force: true }));
    const onHost = (path: string, mount: string): string => (path.startsWith(`${mount}/`) ? volume + path.slice(mount.length) : path);
    const args = command.slice(1).map((a) => onHost(a, redisMounts.get(shared)!));
    // The image's working directory is /data, where the append-only file goes.
    const server: ChildProcess = spawn("redis-server", args, { cwd: data, stdio: "ignore" });
    cleanups.push(async () => {
      if (server.exitCode === null && server.signalCode === null) {
        server.kill("SIGTERM");
        await once(server, "exit");
      }
    });
    const url = redisUrl.replace(notifierMounts.get(shared)!, volume);
    assert.match(url, /^unix:\/\//);
    await waitFor(() => checkRedis(url).then(() => true), { timeoutMs: 10_000, what: "the notifier's REDIS_URL to answer" });

    const client = new Redis({ ...redisOptions(url), maxRetriesPerRequest: 1 });
    try {
      assert.deepEqual(await client.config("GET", "port"), ["port", "0"]);
    } finally {
      client.disconnect();
    }
  });
});
