import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { chmod, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { assertBackupRoot, BackupRootError, inspectBackupRoot, judgeBackupRoot, type BackupRootFacts, type BackupRootProblem } from "./backup-root.js";

const good: BackupRootFacts = { path: "/srv/backups", realPath: "/srv/backups", isDirectory: true, mode: 0o755, writable: true };

describe("judgeBackupRoot (pure)", () => {
  const rows: [string, Partial<BackupRootFacts>, BackupRootProblem | "ok"][] = [
    ["a private folder of its own", {}, "ok"],
    ["an Unraid share folder", { realPath: "/mnt/user/backups" }, "ok"],
    ["a folder under /var/lib", { realPath: "/var/lib/vm-babysitter/backups" }, "ok"],
    ["a mode 0700 folder", { mode: 0o700 }, "ok"],
    ["a missing path", { realPath: undefined, isDirectory: false }, "missing"],
    ["a file", { isDirectory: false }, "not-a-directory"],
    ["a read-only mount", { writable: false }, "unwritable"],
    ["the root folder", { realPath: "/" }, "system-folder"],
    ["a symlink resolving to /etc", { path: "/backups", realPath: "/etc" }, "system-folder"],
    ["/var/lib itself", { realPath: "/var/lib" }, "system-folder"],
    ["the libvirt image folder", { realPath: "/var/lib/libvirt/images" }, "system-folder"],
    ["/usr/lib", { realPath: "/usr/lib" }, "system-folder"],
    ["something below /proc", { realPath: "/proc/self/cwd" }, "system-folder"],
    ["/dev/shm (world-writable and a system tree)", { realPath: "/dev/shm", mode: 0o1777 }, "system-folder"],
    ["/mnt itself (Unraid's disks live there)", { realPath: "/mnt" }, "system-folder"],
    ["/tmp itself", { realPath: "/tmp", mode: 0o1777 }, "system-folder"],
    ["a world-writable folder", { mode: 0o777 }, "world-writable"],
    ["a world-writable folder with the sticky bit", { mode: 0o1777 }, "world-writable"],
    ["a folder only its group may write", { mode: 0o775 }, "ok"],
  ];
  for (const [name, facts, expected] of rows)
    it(`${name}: ${expected}`, () => {
      const verdict = judgeBackupRoot({ ...good, ...facts });
      assert.equal(verdict.ok ? "ok" : verdict.problem, expected);
    });
});

describe("assertBackupRoot on real folders", () => {
  it("resolves symlinks before judging, and refuses world-writable, missing and file paths", async () => {
    const dir = await mkdtemp("/var/tmp/vmbs-root-");
    try {
      await chmod(dir, 0o755);
      await assertBackupRoot(dir);
      const link = join(dir, "to-etc");
      await symlink("/etc", link);
      assert.equal((await inspectBackupRoot(link)).realPath, "/etc");
      const refused = async (path: string, problem: BackupRootProblem) =>
        assert.rejects(assertBackupRoot(path), (err: unknown) => err instanceof BackupRootError && err.problem === problem && err.path === path);
      await refused(link, "system-folder");
      await refused(join(dir, "missing"), "missing");
      await writeFile(join(dir, "file"), "x");
      await refused(join(dir, "file"), "not-a-directory");
      const open = join(dir, "open");
      await mkdtemp(open).then((p) => chmod(p, 0o1777).then(() => refused(p, "world-writable")));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
