import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa, type ResultPromise } from "execa";
import { connectBus, startNatsServer, type RunningNatsServer } from "@vmbs/bus";
import { backupEventSchema } from "@vmbs/contracts";
import { createLab, ignoredListExcept, waitFor, type Lab } from "@vmbs/lab";

const vmbs = fileURLToPath(new URL("./main.js", import.meta.url));

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe("bus credentials in the CLI", () => {
  let lab: Lab;
  let env: Record<string, string>;
  let state: string;
  let stack: ResultPromise | undefined;
  let server: RunningNatsServer | undefined;
  before(async () => {
    lab = await createLab();
    state = await lab.tempDir("state-");
    env = {
      LOCAL_BACKUP_PATH: await lab.tempDir("backups-"),
      LOGFILE_PATH: `${state}/logs/vmbs.log`,
      VMBS_STATE_DIR: state,
      VMBS_LOCAL_NATS_PORT: String(await freePort()),
      HOST_ID: "authhost",
      VM_IGNORED_LIST: await ignoredListExcept(lab.uri),
      NATS_URL: "",
    };
  });
  after(async () => {
    stack?.kill("SIGKILL");
    await server?.stop();
    await lab?.cleanup();
  });

  it("a missing credential file stops start-up with one line naming the setting (exit 78)", async () => {
    const r = await execa("node", [vmbs, "scheduler"], { env: { ...env, NATS_URL: "nats://127.0.0.1:1", NATS_NKEY_SEED: "/nonexistent/x.nk" }, reject: false, timeout: 30_000 });
    assert.equal(r.exitCode, 78);
    assert.match(r.stderr, /^vm-babysitter: NATS_NKEY_SEED: cannot read \/nonexistent\/x\.nk \(ENOENT\)/);
    const two = await execa("node", [vmbs, "scheduler"], { env: { ...env, NATS_URL: "nats://u:p@127.0.0.1:1", NATS_TOKEN: "t" }, reject: false, timeout: 30_000 });
    assert.equal(two.exitCode, 78);
    assert.match(two.stderr, /NATS_TOKEN and credentials in NATS_URL are set/);
  });

  it("never logs the password of NATS_URL", async () => {
    const password = "pw-Zq81-secret";
    const dir = await lab.tempDir("userpass-");
    const configFile = join(dir, "server.conf");
    await writeFile(configFile, `authorization { users = [ { user: "vmbs", password: "${password}" } ] }\n`);
    server = await startNatsServer({ storeDir: join(dir, "store"), configFile });
    const port = new URL(server.url).port;
    const logFile = join(dir, "scheduler.log");
    const scheduler = execa("node", [vmbs, "scheduler"], {
      env: { ...env, NATS_URL: `nats://vmbs:${password}@127.0.0.1:${port}`, LOGFILE_PATH: logFile, LOG_LEVEL: "debug" },
      reject: false,
      forceKillAfterDelay: false,
    });
    let out = "";
    scheduler.stdout?.on("data", (c: Buffer) => (out += c.toString()));
    await waitFor(() => out.includes("connected to NATS"), { timeoutMs: 30_000, what: "the scheduler to connect" });
    scheduler.kill("SIGTERM");
    const done = await scheduler;
    const logged = `${done.stdout}\n${done.stderr}\n${await readFile(logFile, "utf8")}`;
    assert.match(logged, /nats:\/\/\*\*\*@127\.0\.0\.1/);
    assert.ok(!logged.includes(password), "the password is not in any log line");
    // A refused login names the server, not the password.
    const refused = await execa("node", [vmbs, "backup", "--domain", "x", "--timeout", "1"], {
      env: { ...env, NATS_URL: `nats://vmbs:wrong-${password}@127.0.0.1:${port}` },
      reject: false,
      timeout: 30_000,
    });
    assert.notEqual(refused.exitCode, 0);
    assert.match(refused.stderr, /cannot connect to NATS at nats:\/\/127\.0\.0\.1/);
    assert.ok(!`${refused.stdout}${refused.stderr}`.includes(password));
    await server.stop();
  });

  it("`vmbs auth init` + `vmbs start`: the local server admits only the generated roles, and a backup completes", async () => {
    const init = await execa("node", [vmbs, "auth", "init"], { env });
    assert.match(init.stdout, /agent-authhost\.nk/);
    const authDir = join(state, "auth");
    const files = (await readdir(authDir)).sort();
    assert.deepEqual(files, ["agent-authhost.nk", "auth.conf", "mirror-authhost.nk", "notifier.nk", "operator.nk", "restore-authhost.nk", "scheduler.nk"]);
    for (const f of files) assert.equal((await stat(join(authDir, f))).mode & 0o777, 0o600, f);
    const again = await execa("node", [vmbs, "auth", "init"], { env, reject: false });
    assert.equal(again.exitCode, 1, "existing credentials are not replaced without --force");

    const dom = await lab.createDomain({ name: `vmbs-lab-auth-${Date.now().toString(16)}`, sizeMiB: 64 });
    stack = execa("node", [vmbs, "start"], { env, reject: false, forceKillAfterDelay: false });
    const backup = () => execa("node", [vmbs, "backup", "--domain", dom.name, "--level", "full", "--timeout", "120"], { env, reject: false });
    const first = await waitFor(
      async () => {
        const r = await backup();
        return r.exitCode !== 0 && r.stdout.trim() === "" ? undefined : r;
      },
      { timeoutMs: 90_000, intervalMs: 500, what: "the auth-enabled stack to accept commands" },
    );
    assert.equal(first.exitCode, 0, first.stderr);
    const events = first.stdout.trim().split("\n").map((l) => backupEventSchema.parse(JSON.parse(l)));
    assert.deepEqual(events.map((e) => e.type), ["started", "completed"]);
    // Without credentials the local server refuses the client.
    await assert.rejects(connectBus(`nats://127.0.0.1:${env.VMBS_LOCAL_NATS_PORT}`, "anonymous"), /cannot connect/);
    stack.kill("SIGTERM");
    const exit = await stack;
    assert.equal(exit.exitCode, 0, String(exit.stderr).slice(-800));
    assert.match(String(exit.stdout), /"role":"agent-authhost"/);
    assert.doesNotMatch(String(exit.stdout), /permission/i, "no permission was refused to the agent or the scheduler");
  });
});
