import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { describeTarget, parseMirrorTarget, parseRcloneTarget } from "./mirror-target.js";
import { rsyncRemoteShell } from "@vmbs/config";

describe("mirror target", () => {
  it("reads RSYNC_BACKUP_PATH as the seed does", () => {
    const cases: [string, ReturnType<typeof parseMirrorTarget>][] = [
      ["root@nas:/mnt/user/backups", { kind: "ssh", user: "root", host: "nas", root: "/mnt/user/backups" }],
      ["u@10.0.0.5:/b/", { kind: "ssh", user: "u", host: "10.0.0.5", root: "/b/" }],
      ["/mnt/remotes/nas", { kind: "local", root: "/mnt/remotes/nas" }],
      ["/mnt/a@b:/c", { kind: "local", root: "/mnt/a@b:/c" }],
    ];
    for (const [value, want] of cases) assert.deepEqual(parseMirrorTarget(value), want, value);
  });

  it("reads MIRROR_RCLONE_TARGETS entries as remote + path", () => {
    const cases: [string, ReturnType<typeof parseRcloneTarget>][] = [
      ["b2crypt:", { kind: "rclone", remote: "b2crypt:", root: "" }],
      ["s3:bucket/vms/", { kind: "rclone", remote: "s3:", root: "bucket/vms" }],
    ];
    for (const [value, want] of cases) {
      assert.deepEqual(parseRcloneTarget(value), want, value);
      assert.equal(describeTarget(want), value.replace(/\/$/, ""));
    }
    assert.throws(() => parseRcloneTarget("nocolon"), /not an rclone remote/);
  });

  it("quotes words with spaces for rsync's -e and refuses single quotes", () => {
    assert.equal(rsyncRemoteShell(["-q", "-o", "IdentityFile=/k"]), "ssh -q -o IdentityFile=/k");
    assert.equal(rsyncRemoteShell(["-i", "/my keys/k"]), "ssh -i '/my keys/k'");
    assert.throws(() => rsyncRemoteShell(["-i", "/it's"]), /single quote/);
  });
});
