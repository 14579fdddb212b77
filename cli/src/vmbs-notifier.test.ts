import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { execa, type ResultPromise } from "execa";
import { connectBus, publishJson, type NatsConnection } from "@vmbs/bus";
import { eventMessageId, subjects } from "@vmbs/contracts";
import { startHttpReceiver, startTestNats, startTestRedis, waitFor, type HttpReceiver, type TestNats, type TestRedis } from "@vmbs/lab";

const vmbs = fileURLToPath(new URL("./main.js", import.meta.url));

describe("vmbs notifier", () => {
  let dir: string;
  let env: Record<string, string>;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "vmbs-notifier-cli-"));
    env = { PATH: process.env.PATH ?? "", LOGFILE_PATH: join(dir, "vmbs.log"), VMBS_STATE_DIR: join(dir, "state"), HOST_ID: "nhost", LOG_LEVEL: "info" };
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("refuses a malformed NOTIFY_URLS (exit 78) and an unreachable REDIS_URL (exit 69) with one line each, never showing a secret", async () => {
    const bad = await execa("node", [vmbs, "notifier"], { env: { ...env, NOTIFY_URLS: "discord://123/SeCrEt-token-9 smtp://me:PaSsWoRd@mail?to=x@y" }, reject: false, timeout: 30_000 });
    assert.equal(bad.exitCode, 78);
    assert.match(bad.stderr, /^vmbs: invalid configuration: NOTIFY_URLS: smtp:\/\/mail\/\*\*\*: from=ADDRESS is required/m);
    assert.ok(!bad.stderr.includes("SeCrEt") && !bad.stderr.includes("PaSsWoRd"));
    const noRedis = await execa("node", [vmbs, "notifier"], { env: { ...env, NOTIFY_URLS: "json://127.0.0.1:1/x", REDIS_URL: "redis://u:PaSsWoRd@127.0.0.1:1", NATS_URL: "nats://127.0.0.1:1" }, reject: false, timeout: 30_000 });
    assert.equal(noRedis.exitCode, 69);
    assert.match(noRedis.stderr, /^vmbs: REDIS_URL redis:\/\/\*\*\*@127\.0\.0\.1:1 is not reachable/);
    assert.ok(!noRedis.stderr.includes("PaSsWoRd"));
  });

  describe("under least privilege (vmbs auth init, notifier.nk)", () => {
    let nats: TestNats;
    let redis: TestRedis;
    let operator: NatsConnection;
    let hook: HttpReceiver;
    let notifier: ResultPromise | undefined;
    let authDir: string;
    before(async () => {
      authDir = join(dir, "auth");
      await execa("node", [vmbs, "auth", "init", "--hosts", "hv1", "--out", authDir], { env, timeout: 30_000 });
      nats = await startTestNats({ configFile: join(authDir, "auth.conf") });
      redis = await startTestRedis();
      operator = await connectBus(nats.url, "operator", { nkeySeed: (await readFile(join(authDir, "operator.nk"), "utf8")).trim() });
      // As a fleet's admin would: the operator makes the streams, buckets and durables the roles may not make.
      const setup = await execa("node", [vmbs, "bus", "setup", "--hosts", "hv1"], { env: { ...env, NATS_URL: nats.url, NATS_NKEY_SEED: join(authDir, "operator.nk") }, timeout: 30_000 });
      assert.match(setup.stdout, /durable consumers ready for hv1/);
      hook = await startHttpReceiver();
    });
    after(async () => {
      notifier?.kill("SIGKILL");
      await operator?.close();
      await hook?.close();
      await nats?.stop();
      await redis?.stop();
    });

    const runs: [string, () => Record<string, string>][] = [
      ["with REDIS_URL", () => ({ REDIS_URL: `unix://${redis.socketPath}` })],
      ["with its own redis-server (REDIS_URL unset)", () => ({})],
    ];
    for (const [what, redisEnv] of runs)
      it(`sends a failed backup to the target once and stops cleanly on SIGTERM (${what})`, async () => {
        hook.received.length = 0;
        const logFile = join(dir, `${what.length}.log`);
        notifier = execa("node", [vmbs, "notifier"], {
          env: { ...env, ...redisEnv(), LOGFILE_PATH: logFile, NATS_URL: nats.url, NATS_NKEY_SEED: join(authDir, "notifier.nk"), NOTIFY_URLS: `json://${hook.base}/vmbs` },
          reject: false,
        });
        await waitFor(async () => (await readFile(logFile, "utf8").catch(() => "")).includes("notifier started"), { timeoutMs: 20_000, what: "notifier started" });
        const runId = `cli-${what.length}`;
        const subject = subjects.evt.backup("hv1", "failed");
        await publishJson(operator, subject, { type: "failed", host: "hv1", domain: "vm 1", runId, at: "t", bytesWritten: 0, durationMs: 1, reason: "boom" }, eventMessageId(subject, runId));
        await waitFor(() => hook.received.length >= 1, { timeoutMs: 20_000, what: "the alert" });
        await sleep(1_000);
        assert.equal(hook.received.length, 1);
        assert.equal((hook.received[0]!.body as { title: string }).title, "VM-Babysitter: vm 1 on hv1: backup failed");
        notifier.kill("SIGTERM");
        const r = await notifier;
        assert.equal(r.exitCode, 0, String(r.stderr));
        // The notifier role may do all it needs: consume, read vmbs_hosts for the stale-backup check.
        assert.doesNotMatch(await readFile(logFile, "utf8"), /stale-backup check failed|Permissions Violation/i);
        // Its own Redis is stopped with it (redis-server removes its socket on a clean shutdown).
        assert.equal(existsSync(join(env.VMBS_STATE_DIR!, "redis", "redis.sock")), false);
      });
  });
});
