import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { loadConfig } from "@vmbs/config";
import { mirrorEventSchema, subjects, type MirrorEvent, type MirrorEventInput } from "@vmbs/contracts";
import { connectBus, type NatsConnection } from "@vmbs/bus";
import { startTestNats, startTestSshd, testLogger, waitFor, type TestNats, type TestSshd } from "@vmbs/lab";
import { startMirror } from "./mirror-service.js";
import { sshOptionsWithHostKeyPolicy } from "@vmbs/config";
import { chainFolder, sshdOptions } from "./testing/fixtures.js";

const HOST = "hostkeyhost";
const DOMAIN = "web";

/** Every file and folder under `dir` with its size and mtime: what "nothing on the mirror changed" compares. */
async function snapshot(dir: string): Promise<string[]> {
  const names = await readdir(dir, { recursive: true });
  const rows = await Promise.all(names.map(async (n) => ({ n, st: await lstat(join(dir, n)) })));
  return rows.map(({ n, st }) => `${n} ${st.isDirectory() ? "dir" : st.size} ${st.mtimeMs}`).sort();
}

describe("mirror: the SFTP check and rsync's ssh enforce known_hosts against a real sshd", () => {
  let nats: TestNats;
  let nc: NatsConnection;
  let sshd: TestSshd;
  let base: string;
  let backupRoot: string;
  let stateDir: string;
  const events: MirrorEvent[] = [];

  before(async () => {
    base = await mkdtemp(join(tmpdir(), "vmbs-hostkey-"));
    backupRoot = join(base, "backups");
    stateDir = join(base, "state");
    await mkdir(backupRoot);
    await mkdir(stateDir);
    await chainFolder(join(backupRoot, DOMAIN), DOMAIN, 1_900_000_000);
    nats = await startTestNats();
    nc = await connectBus(nats.url, "test");
    sshd = await startTestSshd();
    const sub = nc.subscribe(subjects.evt.serviceAll("mirror", HOST));
    void (async () => {
      for await (const m of sub) events.push(mirrorEventSchema.parse(m.json()));
    })();
  });
  after(async () => {
    await sshd?.close();
    await nc?.close();
    await nats?.stop();
    await rm(base, { recursive: true, force: true });
  });

  /** A mirror of DOMAIN to RSYNC_BACKUP_PATH `target`; a retry an hour away, so each sync here is one attempt. */
  const mirrorWith = (sshOptions: string[], target: string) => {
    const config = loadConfig({
      LOCAL_BACKUP_PATH: backupRoot,
      HOST_ID: HOST,
      VMBS_STATE_DIR: stateDir,
      RSYNC_BACKUP_PATH: target,
      RSYNC_BACKUP_CHAINS_TO_KEEP: "1",
      SSH_OPTIONS: sshOptions.join(" "),
    });
    return startMirror({ config, nc, logger: testLogger("test-mirror"), retryDelaysMs: [3_600_000], catchUpAtStart: false });
  };
  /** One sync of DOMAIN to `mirrorRoot` over ssh with these SSH_OPTIONS; its final event, as published. */
  const syncWith = async (sshOptions: string[], mirrorRoot: string): Promise<MirrorEvent> => {
    const mirror = await mirrorWith(sshOptions, `root@127.0.0.1:${mirrorRoot}`);
    let final: MirrorEventInput;
    try {
      [final] = (await mirror.syncDomain(DOMAIN, "command")) as [MirrorEventInput];
    } finally {
      await mirror.stop();
    }
    return waitFor(() => events.find((e) => e.runId === final.runId && e.type !== "started"), { timeoutMs: 10_000, what: "the published final event" });
  };
  const hostName = () => `[127.0.0.1]:${sshd.port}`;
  const hostFingerprint = async () => (await execa("ssh-keygen", ["-l", "-f", join(sshd.dir, "host.pub")])).stdout.split(" ")[1]!;
  /** The test sshd restarted with a new host key: what a re-keyed server, or a man in the middle, presents. */
  const rekey = async () => {
    await sshd.stop();
    await rm(join(sshd.dir, "host"));
    await rm(join(sshd.dir, "host.pub"));
    await execa("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(sshd.dir, "host")], { timeout: 30_000 });
    await sshd.start();
  };
  /** What the ssh that rsync runs does with these SSH_OPTIONS: its exit code and stderr. */
  const sshAsRsyncWould = async (sshOptions: string[]) => {
    const r = await execa("ssh", [...sshOptionsWithHostKeyPolicy(sshOptions), "root@127.0.0.1", "true"], { reject: false, stdin: "ignore", timeout: 30_000 });
    return { exitCode: r.exitCode, stderr: r.stderr };
  };

  it("SSH_OPTIONS that would accept any host key (no + UserKnownHostsFile=/dev/null) stop an ssh mirror at start, not a local one", async () => {
    const anyKey = ["-q", "-o", `IdentityFile=${sshd.keyFile}`, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-p", String(sshd.port)];
    await assert.rejects(mirrorWith(anyKey, `root@127.0.0.1:${base}`), /StrictHostKeyChecking=accept-new \(or no\) needs a UserKnownHostsFile .* every host key would be accepted/);
    const local = await mirrorWith(anyKey, await mkdtemp(join(base, "mirror-local-")));
    await local.stop();
  });

  it("StrictHostKeyChecking=yes: an unknown host is refused; once ssh-keyscan -H recorded it ([host]:port, hashed), SFTP and rsync both work", async () => {
    const knownHosts = join(base, "strict_known_hosts");
    await writeFile(knownHosts, "");
    const options = sshdOptions(sshd, knownHosts, "yes");
    const mirrorRoot = await mkdtemp(join(base, "mirror-strict-"));

    const refused = await syncWith(options, mirrorRoot);
    assert.equal(refused.type, "failed");
    assert.match(refused.reason ?? "", new RegExp(`host key of \\[127\\.0\\.0\\.1\\]:${sshd.port} \\(ssh-ed25519 SHA256:\\S+\\) is not in known_hosts`));
    assert.ok(refused.reason?.includes(await hostFingerprint()), refused.reason);
    assert.deepEqual(await readdir(mirrorRoot), [], "nothing was copied");
    assert.equal(await readFile(knownHosts, "utf8"), "", "strict checking records nothing");

    const scanned = await execa("ssh-keyscan", ["-H", "-t", "ed25519", "-p", String(sshd.port), "127.0.0.1"], { timeout: 30_000 });
    assert.match(scanned.stdout, /^\|1\|/);
    await writeFile(knownHosts, `${scanned.stdout}\n`);
    const done = await syncWith(options, mirrorRoot);
    assert.equal(done.type, "completed", JSON.stringify(done));
    assert.equal(done.verifiedFiles, 4);
  });

  it("the seed's StrictHostKeyChecking=no records an unknown key on first contact (accept-new), where OpenSSH finds it", async () => {
    const knownHosts = join(base, "new", ".ssh", "known_hosts");
    const options = sshdOptions(sshd, knownHosts, "no");
    const done = await syncWith(options, await mkdtemp(join(base, "mirror-new-")));
    assert.equal(done.type, "completed", JSON.stringify(done));
    const pub = (await readFile(join(sshd.dir, "host.pub"), "utf8")).split(" ").slice(0, 2).join(" ");
    assert.equal(await readFile(knownHosts, "utf8"), `${hostName()} ${pub}\n`);
    assert.equal((await lstat(knownHosts)).mode & 0o777, 0o600);
    const found = await execa("ssh-keygen", ["-F", hostName(), "-f", knownHosts], { reject: false });
    assert.equal(found.exitCode, 0, "ssh-keygen -F finds the recorded key");
  });

  // Last: it leaves the sshd with a new host key.
  it("a changed host key is refused before retention: failed event naming host and both fingerprints, nothing on the mirror touched, rsync's ssh refuses too", async () => {
    const knownHosts = join(base, "changed_known_hosts");
    const options = sshdOptions(sshd, knownHosts, "no");
    const mirrorRoot = await mkdtemp(join(base, "mirror-changed-"));
    const first = await syncWith(options, mirrorRoot);
    assert.equal(first.type, "completed", JSON.stringify(first));
    const recorded = await readFile(knownHosts, "utf8");
    const oldFingerprint = await hostFingerprint();

    // The mirror now holds another chain than the local one, and two archives: a sync would archive the copy
    // and delete the older archive (RSYNC_BACKUP_CHAINS_TO_KEEP=1).
    await rm(join(mirrorRoot, DOMAIN), { recursive: true });
    await chainFolder(join(mirrorRoot, DOMAIN), DOMAIN, 1_800_000_000);
    for (const archive of ["web.2026-01-01+00:00:00.0000000000", "web.2026-02-01+00:00:00.0000000000"]) await chainFolder(join(mirrorRoot, archive), DOMAIN, 1_700_000_000);
    const before = await snapshot(mirrorRoot);

    await rekey();
    const newFingerprint = await hostFingerprint();
    assert.notEqual(newFingerprint, oldFingerprint);
    const refused = await syncWith(options, mirrorRoot);
    assert.equal(refused.type, "failed", JSON.stringify(refused));
    const reason = refused.reason ?? "";
    assert.ok(reason.includes(`host key of ${hostName()} has CHANGED`), reason);
    assert.ok(reason.includes(`offered ssh-ed25519 ${newFingerprint}`), reason);
    assert.ok(reason.includes(`known_hosts has ssh-ed25519 ${oldFingerprint} (${knownHosts}:1)`), reason);
    assert.deepEqual(await snapshot(mirrorRoot), before, "nothing on the mirror was renamed, deleted or written");
    assert.equal(await readFile(knownHosts, "utf8"), recorded, "the changed key was not recorded");

    // ssh itself, with the seed's StrictHostKeyChecking=no, would log in anyway; the options rsync gets refuse.
    const raw = await execa("ssh", [...options, "root@127.0.0.1", "true"], { reject: false, stdin: "ignore", timeout: 30_000 });
    assert.equal(raw.exitCode, 0, "plain ssh with StrictHostKeyChecking=no connects to a changed key");
    const asRsync = await sshAsRsyncWould(options);
    assert.equal(asRsync.exitCode, 255, JSON.stringify(asRsync));
    assert.equal(await readFile(knownHosts, "utf8"), recorded, "ssh did not record the changed key either");
  });
});
