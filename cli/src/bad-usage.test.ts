import { it } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { execa } from "execa";

// test lane: independent (runs the CLI, never libvirt: no agent, no `vmbs start`)

const vmbs = fileURLToPath(new URL("./main.js", import.meta.url));

// What a person mistypes is refused with exit 2 and a line naming the fix, before anything connects to the bus.
const rows: [string, string[], RegExp][] = [
  ["a host id with a dot", ["bus", "setup", "--hosts", "hv1,a.b"], /--hosts expects host ids .*"a\.b"/],
  ["a shell command as a host id", ["bus", "setup", "--hosts", "a b; rm -rf /"], /--hosts expects host ids/],
  ["a status filter that is no host id", ["status", "--host", "../x"], /--host must be a host id/],
  ["a status timeout of 0", ["status", "--timeout", "0"], /--timeout must be a positive number/],
  ["an unknown status option", ["status", "--all"], /Unknown option '--all'/],
  ["a backup of one domain and of all", ["backup", "--domain", "web", "--all"], /give exactly one of --domain and --all/],
  ["a check timeout that is no number", ["check", "--timeout", "soon"], /--timeout must be a positive number/],
  ["a drill of a host id with a dot", ["drill", "--host", "a.b"], /--host must be a host id/],
  ["an events history of no duration", ["events", "--since", "yesterday"], /--since must be a number with s, m, h or d/],
  ["an unknown retention option", ["retention", "--all"], /Unknown option '--all'/],
  ["a dry run of rotate (only retention has one)", ["rotate", "--dry-run"], /Unknown option '--dry-run'/],
];
for (const [name, args, message] of rows)
  it(`vmbs ${args.join(" ")}: ${name} → exit 2`, async () => {
    const r = await execa("node", [vmbs, ...args], { env: { HOST_ID: "hv1", NATS_URL: "nats://127.0.0.1:1" }, reject: false, timeout: 30_000 });
    assert.equal(r.exitCode, 2, r.stderr);
    assert.match(r.stderr, message);
  });
