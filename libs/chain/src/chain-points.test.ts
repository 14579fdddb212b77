import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readChainPoints } from "./chain-points.js";
import { localFileLister, type FileLister } from "./file-lister.js";

const xml = (seconds: number) => `<domaincheckpoint><name>x</name><creationTime>${seconds}</creationTime></domaincheckpoint>`;

/**
 * The local disk seen under another root, as the mirror's SFTP target would be: every call goes through
 * the injected lister (a call with a path outside `/remote` fails), and the calls are counted.
 */
function remoteView(localRoot: string, calls: string[]): FileLister {
  const map = (p: string) => {
    assert.ok(p.startsWith("/remote/"), `a path outside the remote root was used: ${p}`);
    return join(localRoot, p.slice("/remote/".length));
  };
  return {
    readdir: (p) => (calls.push(`readdir ${p}`), localFileLister.readdir(map(p))),
    lstat: (p) => (calls.push(`lstat ${p}`), localFileLister.lstat(map(p))),
    readFile: (p) => (calls.push(`readFile ${p}`), localFileLister.readFile(map(p))),
  };
}

describe("readChainPoints through an injected file lister", () => {
  it("reads the same points locally and through a remote view", async () => {
    const root = await mkdtemp(join(tmpdir(), "vmbs-points-"));
    try {
      // XMLs win; a chain without XMLs falls back to the data files' mtimes; a bad XML is skipped.
      const a = join(root, "web.a");
      await mkdir(join(a, "checkpoints"), { recursive: true });
      await writeFile(join(a, "web.cpt"), '["virtnbdbackup.0","virtnbdbackup.1"]');
      await writeFile(join(a, "sda.full.data"), "x");
      await writeFile(join(a, "checkpoints", "virtnbdbackup.1.xml"), xml(1_700_000_100));
      await writeFile(join(a, "checkpoints", "virtnbdbackup.0.xml"), xml(1_700_000_000));
      await writeFile(join(a, "checkpoints", "broken.xml"), "<no time>");
      const b = join(root, "web.b");
      await mkdir(b);
      await writeFile(join(b, "sda.full.data"), "x");
      await utimes(join(b, "sda.full.data"), 1_600_000_000, 1_600_000_000);

      const rows: [string, number[]][] = [
        ["web.a", [1_700_000_000_000, 1_700_000_100_000]],
        ["web.b", [1_600_000_000_000]],
      ];
      for (const [archive, points] of rows) {
        assert.deepEqual(await readChainPoints(root, "web", archive), { name: archive, points }, `${archive} locally`);
        const calls: string[] = [];
        assert.deepEqual(await readChainPoints("/remote", "web", archive, remoteView(root, calls)), { name: archive, points }, `${archive} remotely`);
        assert.ok(calls.includes(`readdir /remote/${archive}`), calls.join("\n"));
      }
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
