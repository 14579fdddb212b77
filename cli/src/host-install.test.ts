import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { SERVICE_NODE_FLAGS } from "./node-flags.js";

// test lane: independent (runs the CLI, never libvirt: no agent, no `vmbs start`)

const vmbs = fileURLToPath(new URL("./main.js", import.meta.url));
const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
const cliVersion = (JSON.parse(await readFile(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version;

describe("vmbs on a host: on the PATH and under systemd (real processes)", () => {
  let scratch: string;
  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), "vmbs-host-install-"));
  });
  after(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it("setup stops at once on a Node other than 22 or 24, with how to get one", async () => {
    // Debian 12's own node, as far as setup can tell: `node --version` is all it asks.
    const debianNode = join(scratch, "debian-node");
    await execa("mkdir", ["-p", debianNode]);
    await writeFile(join(debianNode, "node"), "#!/bin/sh\necho v18.19.0\n", { mode: 0o755 });
    const r = await execa("bash", [join(repoRoot, "scripts/setup.sh")], { env: { PATH: `${debianNode}:${process.env.PATH}` }, reject: false, timeout: 30_000 });
    assert.equal(r.exitCode, 1);
    assert.equal(
      r.stderr.trim(),
      `[setup] ERROR: node v18.19.0 (${debianNode}/node) is not supported: VM-Babysitter needs Node 22 or 24 — install Node 24 (or 22), e.g. from NodeSource: curl -fsSL https://deb.nodesource.com/setup_24.x | bash - && apt-get install -y nodejs (see the README's quick start)`,
    );
  });

  it("setup's link puts `vmbs` on the PATH: `vmbs --version` prints the version and the Node it runs on", async () => {
    const binDir = join(scratch, "bin");
    const link = await execa("bash", [join(repoRoot, "scripts/link-vmbs.sh")], { env: { VMBS_BIN_DIR: binDir }, timeout: 30_000 });
    assert.match(link.stderr, /vmbs: \S+\/bin\/vmbs -> \S+\/cli\/dist\/main\.js/);
    // By name, from another folder, as a user types it.
    const r = await execa("vmbs", ["--version"], { cwd: scratch, env: { PATH: `${binDir}:${process.env.PATH}` }, timeout: 30_000 });
    assert.equal(r.stdout, `vmbs ${cliVersion} (Node ${process.version})`);
    const relinked = await execa("bash", [join(repoRoot, "scripts/link-vmbs.sh")], { env: { VMBS_BIN_DIR: binDir }, timeout: 30_000 });
    assert.equal(relinked.exitCode, 0, "a second setup replaces its own link");
  });

  it("a file that is not a link is left alone", async () => {
    const binDir = join(scratch, "taken");
    await execa("mkdir", ["-p", binDir]);
    await writeFile(join(binDir, "vmbs"), "#!/bin/sh\necho other\n");
    const r = await execa("bash", [join(repoRoot, "scripts/link-vmbs.sh")], { env: { VMBS_BIN_DIR: binDir }, timeout: 30_000 });
    assert.match(r.stderr, /exists and is not a link; left as it is/);
    assert.equal(await readFile(join(binDir, "vmbs"), "utf8"), "#!/bin/sh\necho other\n");
  });

  it("`vmbs install-service` writes a unit systemd-analyze verifies: restarts on failure, never after 78 or 73, after libvirtd", async () => {
    const unitDir = join(scratch, "units");
    const configFile = join(scratch, "etc-default", "vm-babysitter");
    const env = { PATH: process.env.PATH!, LOCAL_BACKUP_PATH: "/srv/backups", HOST_ID: "hv1", NATS_PASSWORD: 'p"w$x`y\\z', NOT_A_SETTING: "left out" };
    const r = await execa("node", [vmbs, "install-service", "--unit-dir", unitDir, "--config-file", configFile], { env, extendEnv: false, timeout: 30_000 });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /systemctl daemon-reload && systemctl enable --now vm-babysitter/);
    const unitFile = join(unitDir, "vm-babysitter.service");
    const unit = await readFile(unitFile, "utf8");
    const directives = unit.split("\n").filter((l) => !l.startsWith("#") && l.includes("="));
    for (const expected of [
      `ExecStart=${process.execPath} ${SERVICE_NODE_FLAGS.join(" ")} ${vmbs} start`,
      `EnvironmentFile=${configFile}`,
      "Restart=on-failure",
      "RestartPreventExitStatus=78 73",
      "After=network-online.target libvirtd.service",
      "KillMode=mixed",
      "WantedBy=multi-user.target",
    ]) {
      assert.ok(directives.includes(expected), `${expected} in\n${unit}`);
    }
    // verify: unknown or malformed directives, a missing ExecStart binary; no running systemd needed.
    const verify = await execa("systemd-analyze", ["verify", unitFile], { reject: false, timeout: 60_000 });
    assert.equal(verify.exitCode, 0, verify.stderr);
    assert.equal(verify.stderr.trim(), "", "systemd-analyze verify has nothing to say");
    assert.equal((await stat(unitFile)).mode & 0o777, 0o644);

    assert.equal((await stat(configFile)).mode & 0o777, 0o600, "the configuration may hold secrets");
    const config = await readFile(configFile, "utf8");
    // In the order of the configuration's schema; variables that are no setting are left out.
    assert.deepEqual(config.split("\n").filter((l) => l !== "" && !l.startsWith("#")), [
      'LOCAL_BACKUP_PATH="/srv/backups"',
      'NATS_PASSWORD="p\\"w\\$x\\`y\\\\z"',
      'HOST_ID="hv1"',
    ]);
    // A shell reads the quoting back as systemd does: the value exactly as given.
    const read = await execa("bash", ["-c", `set -a; . "$1"; printf %s "$NATS_PASSWORD"`, "read", configFile], { timeout: 30_000 });
    assert.equal(read.stdout, env.NATS_PASSWORD);

    const again = await execa("node", [vmbs, "install-service", "--unit-dir", unitDir, "--config-file", configFile], { env, extendEnv: false, reject: false, timeout: 30_000 });
    assert.equal(again.exitCode, 1);
    assert.match(again.stderr, /exist; pass --force to replace them/);
    const forced = await execa("node", [vmbs, "install-service", "--unit-dir", unitDir, "--config-file", configFile, "--force"], { env: { ...env, HOST_ID: "hv2" }, extendEnv: false, reject: false, timeout: 30_000 });
    assert.equal(forced.exitCode, 0, forced.stderr);
    assert.match(await readFile(configFile, "utf8"), /^HOST_ID="hv2"$/m);
  });

  it("refuses before writing: an invalid configuration (78), a value an environment file cannot hold, an unknown option (2)", async () => {
    const unitDir = join(scratch, "refused");
    const configFile = join(unitDir, "vm-babysitter.env");
    const run = (over: Record<string, string>) =>
      execa("node", [vmbs, "install-service", "--unit-dir", unitDir, "--config-file", configFile], { env: { PATH: process.env.PATH!, ...over }, extendEnv: false, reject: false, timeout: 30_000 });
    const badConfig = await run({ MAX_BACKUPS_PER_CHAIN: "3a" });
    assert.equal(badConfig.exitCode, 78);
    assert.match(badConfig.stderr, /MAX_BACKUPS_PER_CHAIN: expected a whole number/);
    const lineBreak = await run({ NATS_PASSWORD: "a\nb" });
    assert.equal(lineBreak.exitCode, 2);
    assert.match(lineBreak.stderr, /^vmbs install-service: NATS_PASSWORD holds a line break/);
    const unknownOption = await execa("node", [vmbs, "install-service", "--unit", unitDir], { reject: false, timeout: 30_000 });
    assert.equal(unknownOption.exitCode, 2);
    assert.match(unknownOption.stderr, /Unknown option '--unit'[\s\S]*Usage: vmbs install-service/);
    await assert.rejects(stat(unitDir), /ENOENT/, "nothing was written");
  });
});
