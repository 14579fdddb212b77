import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { refusedEngineArgs } from "./engine-args.js";

describe("refusedEngineArgs (VIRTNBDBACKUP_ARGS read as argparse reads them)", () => {
  const rows: [string, string[], string[]][] = [
    ["nothing", [], []],
    ["allowed options", ["--compress=2", "-z", "--worker", "2", "-x", "vdb", "--exclude=vdc", "-F", "/data", "--noprogress", "-v", "--nocolor"], []],
    ["-o", ["-o", "/elsewhere"], ["--output"]],
    ["-o glued", ["-o/elsewhere"], ["--output"]],
    ["--output=", ["--output=/elsewhere"], ["--output"]],
    ["an abbreviation", ["--out", "/x"], ["--output"]],
    ["an abbreviation with =", ["--outp=/x"], ["--output"]],
    ["an ambiguous abbreviation", ["--s"], ["--scratchdir", "--socketfile", "--startonly", "--strict"]],
    ["a flag cluster ending in -o", ["-no/x"], ["--output"]],
    ["a value cluster hides the rest", ["-x-o"], []],
    ["-l copy", ["-l", "copy"], ["--level"]],
    ["--level=copy", ["--level=copy"], ["--level"]],
    ["-d", ["-d", "other vm"], ["--domain"]],
    ["--domain=", ["--domain=other"], ["--domain"]],
    ["-U", ["-U", "qemu+ssh://x/system"], ["--uri"]],
    ["--checkpointdir", ["--checkpointdir", "/x"], ["--checkpointdir"]],
    ["-S (scratch, or --start-domain in 2.x)", ["-S", "/x"], ["--scratchdir"]],
    ["--socketfile", ["--socketfile=/tmp/s"], ["--socketfile"]],
    ["--type raw", ["--type", "raw"], ["--type"]],
    ["-r", ["-r"], ["--raw"]],
    ["debug modes", ["-s", "-k", "--printonly"], ["--startonly", "--killonly", "--printonly"]],
    ["--threshold", ["-T", "1000"], ["--threshold"]],
    ["--strict", ["--strict"], ["--strict"]],
    ["help and version", ["-h", "--version"], ["--help", "--version"]],
    ["a negative number as a value", ["--worker", "-1"], []],
    ["two refused in one cluster", ["-rs"], ["--raw", "--startonly"]],
  ];
  for (const [name, args, options] of rows)
    it(name, () => {
      const refused = refusedEngineArgs(args);
      assert.deepEqual(refused.map((r) => r.option), options);
      for (const r of refused) assert.ok(r.reason.length > 10 && args.includes(r.arg), JSON.stringify(r));
    });
});
