import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { join, posix } from "node:path";
import { execa } from "execa";
import { startTestSshd, type TestSshd } from "@vmbs/lab";
import { archiveFolderName, fileStampsOf, readChainFolder, type FileStamps } from "@vmbs/chain";
import { compareTrees, mirrorArchiveName, rotateMirrorCopy } from "./mirror-chain.js";
import { localMirrorStore, openSftpStore, type MirrorStore } from "./mirror-store.js";
import { parseSshOptions } from "@vmbs/config";
import { progress2Bytes, rsyncArgs, statsBytes } from "./run-rsync.js";
import { rcloneStatsBytes, rcloneStore } from "./rclone.js";
import { chainFolder, sshdOptions } from "./testing/fixtures.js";

const tree = (entries: [string, number, number][]): FileStamps => new Map(entries.map(([p, size, mtimeS]) => [p, { size, mtimeS }]));

describe("mirror decisions (pure)", () => {
  it("compares file lists, sizes and mtimes", () => {
    const local = tree([["vda.full.data", 10, 100], ["web.cpt", 2, 101]]);
    const cases: [FileStamps, string[]][] = [
      [tree([["vda.full.data", 10, 100], ["web.cpt", 2, 101]]), []],
      [tree([["vda.full.data", 10, 100]]), ["web.cpt missing on the mirror"]],
      [tree([["vda.full.data", 9, 100], ["web.cpt", 2, 101]]), ["vda.full.data is 9 bytes on the mirror, 10 locally"]],
      [tree([["vda.full.data", 10, 99], ["web.cpt", 2, 101]]), ["vda.full.data has mtime 99 on the mirror, 100 locally"]],
      [tree([["vda.full.data", 10, 100], ["web.cpt", 2, 101], ["x", 1, 1]]), ["x exists only on the mirror"]],
    ];
    for (const [mirror, want] of cases) assert.deepEqual(compareTrees(local, mirror), want);
  });

  it("reads rsync's --info=progress2 lines: the running byte count, nothing from any other line", () => {
    const cases: [string, number | undefined][] = [
      ["         32,768   0%    0.00kB/s    0:00:00  ", 32_768],
      ["     19,562,496  55%   16.78MB/s    0:00:00  ", 19_562_496],
      ["     30,000,000  85%   18.67MB/s    0:00:01 (xfr#1, to-chk=1/3)", 30_000_000],
      ["  1,099,511,627,776 100%  512.00MB/s    2:13:45 (xfr#9, ir-chk=1000/1012)", 1_099_511_627_776],
      // Another locale's digit grouping; no grouping at all (rsync --no-human-readable, older builds).
      ["     19.562.496  55%   16,78MB/s    0:00:00", 19_562_496],
      ["1234 0% 0.00kB/s 0:00:00", 1234],
      // Not progress: the stats and summary lines, file names, errors.
      ["Total bytes sent: 35,008,704", undefined],
      ["sent 35,008,704 bytes  received 54 bytes  14,003,503.20 bytes/sec", undefined],
      ["total size is 35,000,000  speedup is 1.00", undefined],
      ["vda.full.data", undefined],
      ["rsync: [sender] link_stat \"/x\" failed: No such file or directory (2)", undefined],
      ["", undefined],
    ];
    for (const [line, want] of cases) assert.equal(progress2Bytes(line), want, line);
  });

  it("names the mirror archive like the local archive of the same second, else from its oldest file", () => {
    const mirror = tree([["vda.full.data", 1, 1_700_000_000], ["web.cpt", 1, 1_700_000_500]]);
    const computed = archiveFolderName("web", 1_700_000_000_000, "UTC");
    const local = `${computed.slice(0, -10)}1234567890`;
    assert.equal(mirrorArchiveName("web", mirror, [local, "web"], [], "UTC"), local);
    assert.equal(mirrorArchiveName("web", mirror, ["web"], [], "UTC"), computed);
    assert.notEqual(mirrorArchiveName("web", mirror, [local], [local], "UTC"), local, "a taken name is not reused");
  });

  it("builds rsync arguments: -s and ssh options (with the SFTP check's known_hosts policy) for a remote, names as single arguments", () => {
    const remote = rsyncArgs({ rsyncArgs: ["-a"], sshOptions: ["-p", "2222"], source: "/b/a $(x)", target: { kind: "ssh", user: "root", host: "nas", root: "/m/" }, domain: "a $(x)" });
    const ssh = `ssh -o StrictHostKeyChecking=yes -o 'UserKnownHostsFile=${homedir()}/.ssh/known_hosts ${homedir()}/.ssh/known_hosts2' -o 'GlobalKnownHostsFile=/etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2' -p 2222`;
    assert.deepEqual(remote, ["-a", "--stats", "--info=progress2", "--timeout=300", "-s", "-e", ssh, "/b/a $(x)/", "root@nas:/m/a $(x)/"]);
    const local = rsyncArgs({ rsyncArgs: ["-a", "--timeout=60"], sshOptions: [], source: "/b/w", target: { kind: "local", root: "/mnt/m" }, domain: "w" });
    assert.deepEqual(local, ["-a", "--timeout=60", "--stats", "--info=progress2", "/b/w/", "/mnt/m/w/"]);
    assert.equal(statsBytes("Literal data: 1,234 bytes\nTotal bytes sent: 2,345,678\n", "Total bytes sent"), 2_345_678);
    assert.equal(statsBytes("Total bytes sent: 99\n", "Literal data"), undefined);
    const log = '{"level":"info","stats":{"bytes":51,"checks":0}}\n{"level":"info","stats":{"bytes":4096,"checks":1}}\n';
    assert.equal(rcloneStatsBytes(log), 4096);
  });
});

describe("mirror rotation and retention on the target (real files; over SFTP and locally)", () => {
  let sshd: TestSshd;
  let base: string;
  before(async () => {
    base = await mkdtemp(join(tmpdir(), "vmbs-mirror-ret-"));
    sshd = await startTestSshd();
  });
  after(async () => {
    await sshd?.close();
    await rm(base, { recursive: true, force: true });
  });

  for (const kind of ["sftp", "local", "rclone crypt"] as const) {
    it(`${kind}: archives the copy, keeps exactly RSYNC_BACKUP_CHAINS_TO_KEEP archives, spares pinned, foreign and active folders`, async () => {
      const root = await mkdtemp(join(base, `${kind}-`));
      const d = "web";
      await chainFolder(join(root, d), d, 1_800_000_000);
      const old = ["web.2026-01-01+00:00:00.0000000000", "web.2026-02-01+00:00:00.0000000000"];
      for (const name of old) await chainFolder(join(root, name), d, 1_700_000_000);
      const foreign = "web.2025-12-01+00:00:00.0000000000";
      await chainFolder(join(root, foreign), d, 1_600_000_000, { "notes.txt": "mine" });
      const pinned = "web.2025-06-01+00:00:00.0000000000-keep";
      await chainFolder(join(root, pinned), d, 1_500_000_000);
      const vmNamedLikeArchive = "web.2025-01-01+00:00:00.0000000000";
      await chainFolder(join(root, vmNamedLikeArchive), vmNamedLikeArchive, 1_400_000_000);
      await mkdir(join(root, "other"));

      let store: MirrorStore;
      let at = root;
      let names = async () => (await readdir(root)).sort();
      if (kind === "rclone crypt") {
        // The same folders, uploaded into a crypt remote over a local folder; the store then works through rclone.
        const config = join(base, "rclone.conf");
        const obscured = (await execa("rclone", ["obscure", "pw"], { timeout: 30_000 })).stdout.trim();
        await writeFile(config, `[store]\ntype = local\n\n[secret]\ntype = crypt\nremote = store:${join(base, "crypt")}\npassword = ${obscured}\n`);
        await execa("rclone", ["--config", config, "copy", "--create-empty-src-dirs", root, "secret:m"], { timeout: 60_000 });
        store = rcloneStore("secret:", { configFile: config, timeoutMs: 60_000 });
        at = "m";
        names = async () => (await store.readdir("m")).map((e) => e.name).sort();
      } else {
        store = kind === "sftp" ? await openSftpStore({ host: "127.0.0.1", user: "root", ssh: parseSshOptions(sshdOptions(sshd, join(base, "known_hosts"))) }) : localMirrorStore();
      }
      try {
        const mirror = fileStampsOf(await readChainFolder(posix.join(at, d), d, store))!;
        assert.equal(mirror.size, 4);
        const r = await rotateMirrorCopy(store, { root: at, domain: d, mirror, localNames: [], keep: 2, timeZone: "UTC" });
        assert.equal(r.archivedTo, archiveFolderName(d, 1_800_000_000_000, "UTC"));
        assert.deepEqual(r.pruned, [old[0]]);
        assert.deepEqual(r.keptForeign, [foreign]);
        assert.deepEqual(await names(), [r.archivedTo, old[1], foreign, pinned, vmNamedLikeArchive, "other"].sort());
        assert.deepEqual((await store.readdir(posix.join(at, foreign))).map((e) => e.name), ["notes.txt"], "only the tool's files were removed");
        await assert.rejects(store.readdir(posix.join(at, d)), (err: { code?: string }) => err.code === "ENOENT");
      } finally {
        await store.close();
      }
    });
  }

  it("sftp: a missing folder is ENOENT, as FileLister requires", async () => {
    const store = await openSftpStore({ host: "127.0.0.1", user: "root", ssh: parseSshOptions(sshdOptions(sshd, join(base, "known_hosts"))) });
    try {
      assert.equal((await readChainFolder(join(base, "nope"), "nope", store)).exists, false);
      await assert.rejects(store.lstat(join(base, "nope")), (err: { code?: string }) => err.code === "ENOENT");
    } finally {
      await store.close();
    }
  });
});
