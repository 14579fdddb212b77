import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa, type ResultPromise } from "execa";
import { existsSync } from "node:fs";
import { AckPolicy, jetstreamManager } from "@nats-io/jetstream";
import { nkeys } from "@nats-io/transport-node";
import { connectBus, isPermissionViolation, openHostsBucket } from "@vmbs/bus";
import { startNatsServer, type RunningNatsServer } from "@vmbs/nats-server";
import { backupEventSchema, subjects } from "@vmbs/contracts";
import { createLab, vmbsProcessEnv, waitFor, type Lab } from "@vmbs/lab";
import { onceStackUp } from "./testing/once-stack-up.js";

const vmbs = fileURLToPath(new URL("./main.js", import.meta.url));

describe("bus credentials in the CLI", () => {
  let lab: Lab;
  let env: Record<string, string>;
  let state: string;
  let stack: ResultPromise | undefined;
  let server: RunningNatsServer | undefined;
  before(async () => {
    lab = await createLab();
    env = await vmbsProcessEnv(lab, "authhost");
    state = env.VMBS_STATE_DIR!;
  });
  after(async () => {
    stack?.kill("SIGKILL");
    await server?.stop();
    await lab?.cleanup();
  });

  it("a missing credential file stops start-up with one line naming the setting (exit 78)", async () => {
    const r = await execa("node", [vmbs, "scheduler"], { env: { ...env, NATS_URL: "nats://127.0.0.1:1", NATS_NKEY_SEED: "/nonexistent/x.nk" }, reject: false, timeout: 30_000 });
    assert.equal(r.exitCode, 78);
    assert.match(r.stderr, /^vmbs: NATS_NKEY_SEED: cannot read \/nonexistent\/x\.nk \(ENOENT\)/);
    const two = await execa("node", [vmbs, "scheduler"], { env: { ...env, NATS_URL: "nats://u:p@127.0.0.1:1", NATS_TOKEN: "t" }, reject: false, timeout: 30_000 });
    assert.equal(two.exitCode, 78);
    assert.match(two.stderr, /NATS_TOKEN and credentials in NATS_URL are set/);
  });

  it("`vmbs auth` usage: help, a missing sub-command, a bad --share-root or host id", async () => {
    const help = await execa("node", [vmbs, "auth", "--help"], { env });
    assert.match(help.stdout, /Usage: vmbs auth init/);
    const cases: [string[], RegExp][] = [
      [["auth"], /expected "vmbs auth init"/],
      [["auth", "init", "--share-root", "hv2"], /--share-root expects HOST=ROOT/],
      [["auth", "init", "--hosts", "a.b"], /invalid host id "a\.b"/],
      [["auth", "init", "--hosts", "hv1", "--share-root", "hv2=hv1"], /names host "hv2", which is not in the host list/],
    ];
    for (const [args, message] of cases) {
      const r = await execa("node", [vmbs, ...args], { env: { ...env, VMBS_STATE_DIR: await lab.tempDir("unused-") }, reject: false });
      assert.equal(r.exitCode, 2, args.join(" "));
      assert.match(r.stderr, message);
    }
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

  it("connects over TLS with NATS_TLS_CA / NATS_TLS_CERT / NATS_TLS_KEY to a server that verifies clients", async () => {
    const dir = await lab.tempDir("tls-");
    const f = (name: string) => join(dir, name);
    const openssl = (...args: string[]) => execa("openssl", args, { cwd: dir, timeout: 30_000 });
    const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    await openssl("req", "-x509", ...ec, "-keyout", f("ca.key"), "-out", f("ca.pem"), "-days", "1", "-subj", "/CN=vmbs-test-ca");
    // An IP address only: connectBus checks it against the configured address (nats.js alone would expect localhost).
    await writeFile(f("server.ext"), "subjectAltName=IP:127.0.0.1\n");
    for (const who of ["server", "client"]) {
      await openssl("req", ...ec, "-keyout", f(`${who}.key`), "-out", f(`${who}.csr`), "-subj", `/CN=${who === "server" ? "127.0.0.1" : "vmbs-client"}`);
      const ext = who === "server" ? ["-extfile", f("server.ext")] : [];
      await openssl("x509", "-req", "-in", f(`${who}.csr`), "-CA", f("ca.pem"), "-CAkey", f("ca.key"), "-CAcreateserial", "-out", f(`${who}.pem`), "-days", "1", ...ext);
    }
    const configFile = f("server.conf");
    await writeFile(configFile, `tls { cert_file: "${f("server.pem")}", key_file: "${f("server.key")}", ca_file: "${f("ca.pem")}", verify: true, timeout: 5 }\n`);
    const tlsServer = await startNatsServer({ storeDir: f("store"), configFile });
    try {
      const url = `tls://127.0.0.1:${new URL(tlsServer.url).port}`;
      const tlsEnv = { ...env, NATS_URL: url, NATS_TLS_CA: f("ca.pem"), NATS_TLS_CERT: f("client.pem"), NATS_TLS_KEY: f("client.key") };
      const scheduler = execa("node", [vmbs, "scheduler"], { env: { ...tlsEnv, LOGFILE_PATH: f("s.log") }, reject: false, forceKillAfterDelay: false });
      let out = "";
      scheduler.stdout?.on("data", (c: Buffer) => (out += c.toString()));
      await waitFor(() => out.includes("connected to NATS") || scheduler.exitCode !== null, { timeoutMs: 30_000, what: "the scheduler to connect over TLS" });
      scheduler.kill("SIGTERM");
      const done = await scheduler;
      assert.match(out, /connected to NATS/, `${done.stderr}`);
      // Without a client certificate the server refuses the connection.
      const noCert = await execa("node", [vmbs, "backup", "--domain", "x", "--timeout", "1"], {
        env: { ...tlsEnv, NATS_TLS_CERT: "", NATS_TLS_KEY: "" },
        reject: false,
        timeout: 30_000,
      });
      assert.notEqual(noCert.exitCode, 0);
      assert.match(noCert.stderr, /cannot connect to NATS at tls:\/\/127\.0\.0\.1/);
      const halfSet = await execa("node", [vmbs, "scheduler"], { env: { ...tlsEnv, NATS_TLS_KEY: "" }, reject: false, timeout: 30_000 });
      assert.equal(halfSet.exitCode, 78);
      assert.match(halfSet.stderr, /NATS_TLS_CERT and NATS_TLS_KEY go together/);
    } finally {
      await tlsServer.stop();
    }
  });

  it("`vmbs auth init` + `vmbs start`: the local server admits only the generated roles, and a backup completes", async () => {
    const init = await execa("node", [vmbs, "auth", "init"], { env });
    assert.match(init.stdout, /agent-authhost\.nk/);
    const authDir = join(state, "auth");
    const files = (await readdir(authDir)).sort();
    assert.deepEqual(files, ["agent-authhost.nk", "auth.conf", "mirror-authhost.nk", "nats-server.conf", "notifier.nk", "operator.nk", "restore-authhost.nk", "scheduler.nk", "status.nk"]);
    for (const f of files) assert.equal((await stat(join(authDir, f))).mode & 0o777, 0o600, f);
    // A server of one's own (compose's) started with nats-server.conf has the disk budget and the authorization.
    assert.match(await readFile(join(authDir, "nats-server.conf"), "utf8"), /^jetstream \{ max_file_store: 2147483648 \}\ninclude "auth\.conf"\n$/);
    const own = await startNatsServer({ storeDir: await lab.tempDir("own-nats-"), configFile: join(authDir, "nats-server.conf") });
    try {
      await assert.rejects(connectBus(own.url, "anonymous"), /cannot connect/);
      const operator = await connectBus(own.url, "operator", { nkeySeed: (await readFile(join(authDir, "operator.nk"), "utf8")).trim() });
      await operator.close();
    } finally {
      await own.stop();
    }
    const again = await execa("node", [vmbs, "auth", "init"], { env, reject: false });
    assert.equal(again.exitCode, 1, "existing credentials are not replaced without --force");

    // An older version's config (here: the agent may not publish its events) is brought to this version's roles,
    // same keys: by `vmbs auth refresh`, and by `vmbs start` for its own folder (the backup below needs it).
    const confPath = join(authDir, "auth.conf");
    const current = await readFile(confPath, "utf8");
    const older = current.replace(/"vmbs\.evt\.backup\.authhost\.\*", /, "");
    assert.notEqual(older, current, "the test's older config lacks a permission");
    await writeFile(confPath, older);
    const refresh = await execa("node", [vmbs, "auth", "refresh"], { env, reject: false });
    assert.equal(refresh.exitCode, 0, refresh.stderr);
    assert.match(refresh.stdout, /^rewrote .*auth\.conf/);
    assert.equal(await readFile(confPath, "utf8"), current);
    assert.match((await execa("node", [vmbs, "auth", "refresh"], { env })).stdout, /auth\.conf is current/);
    await writeFile(confPath, older);

    const dom = await lab.createDomain({ name: `${lab.domainPrefix}auth-${Date.now().toString(16)}`, sizeMiB: 64 });
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
    // Chain events of the checks around the backup may come too: the backup's own are those with a runId.
    const events = first.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => "runId" in l).map((l) => backupEventSchema.parse(l));
    assert.deepEqual(events.map((e) => e.type), ["started", "completed"]);
    assert.equal(await readFile(confPath, "utf8"), current, "vmbs start brought its auth config to this version's roles");
    // Without credentials the local server refuses the client.
    const url = `nats://127.0.0.1:${env.VMBS_LOCAL_NATS_PORT}`;
    await assert.rejects(connectBus(url, "anonymous"), /cannot connect/);
    // From another machine: NATS_URL + NATS_NKEY_SEED. The operator's file works; the scheduler's may not
    // wait for outcomes (it may not subscribe there), and says so.
    const remote = (seed: string, host: string) =>
      execa("node", [vmbs, "backup", "--domain", dom.name, "--host", host, "--level", "inc", "--timeout", "120"], {
        env: { ...env, NATS_URL: url, NATS_NKEY_SEED: join(authDir, seed) },
        reject: false,
      });
    const inc = await remote("operator.nk", "authhost");
    assert.equal(inc.exitCode, 0, inc.stderr);
    assert.match(inc.stdout, /"type":"completed".*"level":"inc"/);
    const refused = await remote("scheduler.nk", "nohost");
    assert.equal(refused.exitCode, 1);
    assert.match(refused.stderr, /Permissions Violation for Subscription/);
    stack.kill("SIGTERM");
    const exit = await stack;
    assert.equal(exit.exitCode, 0, String(exit.stderr).slice(-800));
    assert.match(String(exit.stdout), /"role":"agent-authhost"/);
    assert.match(String(exit.stdout), /brought the auth folder's roles up to this version/);
    assert.doesNotMatch(String(exit.stdout), /permission/i, "no permission was refused to the agent or the scheduler");
    for (const f of files.filter((name) => name.endsWith(".nk"))) {
      const seed = (await readFile(join(authDir, f), "utf8")).trim();
      assert.ok(!String(exit.stdout).includes(seed) && !(await readFile(env.LOGFILE_PATH!, "utf8")).includes(seed), `${f} is not logged`);
    }
  });

  it("`vmbs start` with no auth folder and no NATS_URL runs a closed bus: credentials are generated, strangers refused, vmbs backup just works (issue 14.2)", async () => {
    const fresh = await vmbsProcessEnv(lab, "closedhost");
    const authDir = join(fresh.VMBS_STATE_DIR!, "auth");
    const dom = await lab.createDomain({ name: `${lab.domainPrefix}closed-${Date.now().toString(16)}`, sizeMiB: 64 });
    const started = execa("node", [vmbs, "start"], { env: fresh, reject: false, forceKillAfterDelay: false });
    try {
      const first = await onceStackUp(() => execa("node", [vmbs, "backup", "--domain", dom.name, "--level", "full", "--timeout", "120"], { env: fresh, reject: false }), 90_000);
      assert.equal(first.exitCode, 0, first.stderr);
      assert.match(first.stdout, /"type":"completed"/);
      const files = (await readdir(authDir)).sort();
      assert.deepEqual(files, ["agent-closedhost.nk", "auth.conf", "mirror-closedhost.nk", "nats-server.conf", "notifier.nk", "operator.nk", "restore-closedhost.nk", "scheduler.nk", "status.nk"]);
      for (const f of files) assert.equal((await stat(join(authDir, f))).mode & 0o777, 0o600, f);
      const url = `nats://127.0.0.1:${fresh.VMBS_LOCAL_NATS_PORT}`;
      await assert.rejects(connectBus(url, "anonymous"), /cannot connect/);
      const stranger = new TextDecoder().decode(nkeys.createUser().getSeed());
      await assert.rejects(connectBus(url, "stranger", { nkeySeed: stranger }), /cannot connect/);

      // The generated agent credential cannot walk around to the restore service: no push consumer, no stream,
      // and the restore service of this host never sees the request it wrote to its own key.
      const agent = await connectBus(url, "attacker", { nkeySeed: (await readFile(join(authDir, "agent-closedhost.nk"), "utf8")).trim(), inboxPrefix: "_INBOX.agent-closedhost" });
      try {
        const hosts = await openHostsBucket(agent);
        await hosts.put("closedhost", JSON.stringify({ domain: dom.name, as: "vmbs-lab-evil", to: "qemu:///system", consent: true }));
        const jsm = await jetstreamManager(agent);
        for (const config of [
          { deliver_subject: subjects.svc.restoreEndpoint("closedhost", "replicate"), filter_subject: "$KV.vmbs_hosts.closedhost" },
          { deliver_subject: subjects.svc.restoreEndpoint("closedhost", "replicate"), filter_subject: "$KV.vmbs_hosts.closedhost", durable_name: "x" },
        ])
          await assert.rejects(jsm.consumers.add("KV_vmbs_hosts", { ...config, ack_policy: AckPolicy.None }), (err) => isPermissionViolation(err));
        await assert.rejects(jsm.streams.delete("VMBS_CMD"), (err) => isPermissionViolation(err));
      } finally {
        await agent.close();
      }
      await new Promise((r) => setTimeout(r, 1_000));
      const all = await execa("virsh", ["-c", lab.uri, "list", "--all", "--name"]);
      assert.ok(!all.stdout.split("\n").includes("vmbs-lab-evil"), "nothing was replicated");
    } finally {
      started.kill("SIGTERM");
      const exit = await started;
      assert.equal(exit.exitCode, 0, String(exit.stderr).slice(-800));
      assert.match(String(exit.stdout), /generated this host's bus credentials/);
    }
    // A second start uses the folder as it is (no new credentials), and an open bus only when asked for.
    const seedBefore = await readFile(join(authDir, "operator.nk"), "utf8");
    const insecure = await vmbsProcessEnv(lab, "openhost");
    const open = execa("node", [vmbs, "start"], { env: { ...insecure, VMBS_INSECURE_BUS: "yes" }, reject: false, forceKillAfterDelay: false });
    try {
      const nc = await waitFor(() => connectBus(`nats://127.0.0.1:${insecure.VMBS_LOCAL_NATS_PORT}`, "anonymous").catch(() => undefined), {
        timeoutMs: 60_000,
        intervalMs: 500,
        what: "the insecure local server",
      });
      await nc.close();
    } finally {
      open.kill("SIGTERM");
      const exit = await open;
      assert.match(String(exit.stdout), /VMBS_INSECURE_BUS is set: the local nats-server runs WITHOUT authorization/);
    }
    assert.equal(await readFile(join(authDir, "operator.nk"), "utf8"), seedBefore);
    assert.equal(existsSync(join(insecure.VMBS_STATE_DIR!, "auth")), false, "no credentials were generated for the insecure start");
  });
});
