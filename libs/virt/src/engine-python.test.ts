import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { enginePython } from "./libvirt-bridge.js";

/** enginePython with a PATH of one folder holding `virtnbdbackup` with `script` (none when undefined) and `mode`. */
async function pythonFor(script: string | undefined, mode = 0o755): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "vmbs-engine-"));
  try {
    if (script !== undefined) {
      await writeFile(join(dir, "virtnbdbackup"), script);
      await chmod(join(dir, "virtnbdbackup"), mode);
    }
    return await enginePython(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe("enginePython: the interpreter virtnbdbackup runs with", () => {
  const rows: [string, string | undefined, number, string][] = [
    ["a direct #! line", "#!/usr/bin/python3\nimport sys\n", 0o755, "/usr/bin/python3"],
    ["#! through env", "#!/usr/bin/env python3\n", 0o755, "python3"],
    ["#! with a flag", "#! /opt/py/bin/python3.11 -s\n", 0o755, "/opt/py/bin/python3.11"],
    ["no virtnbdbackup in PATH", undefined, 0o755, "/usr/bin/python3"],
    ["a virtnbdbackup that is not executable is skipped", "#!/nope/python\n", 0o644, "/usr/bin/python3"],
  ];
  for (const [what, script, mode, expected] of rows) {
    it(what, async () => assert.equal(await pythonFor(script, mode), expected));
  }
});
