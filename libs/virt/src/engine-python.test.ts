import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { enginePython } from "./libvirt-bridge.js";

describe("enginePython: the interpreter virtnbdbackup runs with", () => {
  const rows: [string, string | undefined, string][] = [
    ["a direct #! line", "#!/usr/bin/python3\nimport sys\n", "/usr/bin/python3"],
    ["#! through env", "#!/usr/bin/env python3\n", "python3"],
    ["#! with a flag", "#! /opt/py/bin/python3.11 -s\n", "/opt/py/bin/python3.11"],
    ["no virtnbdbackup in PATH", undefined, "/usr/bin/python3"],
  ];
  for (const [what, script, expected] of rows) {
    it(what, async () => {
      const dir = await mkdtemp(join(tmpdir(), "vmbs-engine-"));
      try {
        if (script !== undefined) {
          await writeFile(join(dir, "virtnbdbackup"), script);
          await chmod(join(dir, "virtnbdbackup"), 0o755);
        }
        assert.equal(await enginePython(dir), expected);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }

  it("skips a virtnbdbackup that is not executable", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vmbs-engine-"));
    try {
      await writeFile(join(dir, "virtnbdbackup"), "#!/nope/python\n");
      assert.equal(await enginePython(dir), "/usr/bin/python3");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
