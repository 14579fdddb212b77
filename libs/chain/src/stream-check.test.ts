import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MAX_JSON_FRAME, checkStreamFile } from "./stream-check.js";

const frame = (kind: string, start: number, length: number) =>
  Buffer.from(`${kind} ${start.toString(16).padStart(16, "0")} ${length.toString(16).padStart(16, "0")}\r\n`, "latin1");

/** A stream as virtnbdbackup 1.9.15 writes it (virtnbdbackup.md §3.4). */
function stream(meta: object, extents: ({ data: Buffer; at: number } | { zero: number; at: number })[]): Buffer {
  const json = Buffer.from(JSON.stringify(meta));
  const parts: Buffer[] = [frame("meta", 0, json.length), json, Buffer.from("\r\n")];
  for (const e of extents) {
    if ("data" in e) parts.push(frame("data", e.at, e.data.length), e.data, Buffer.from("\r\n"));
    else parts.push(frame("zero", e.at, e.zero));
  }
  parts.push(frame("stop", 0, 0));
  return Buffer.concat(parts);
}

describe("stream check (CHECK_BACKUPS_INTEGRITY for 1.9.15)", () => {
  it("accepts a complete stream and names truncation, bad framing and trailing bytes", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vmbs-stream-"));
    try {
      const good = stream({ compressed: false, checkpointName: "virtnbdbackup.0" }, [
        { data: Buffer.alloc(4096, 7), at: 0 },
        { zero: 65536, at: 4096 },
        { data: Buffer.alloc(100, 1), at: 131072 },
      ]);
      const write = async (name: string, bytes: Buffer) => {
        await writeFile(join(dir, name), bytes);
        return checkStreamFile(join(dir, name));
      };
      assert.deepEqual(await write("good", good), { ok: true });
      const truncated = await write("truncated", good.subarray(0, 2000));
      assert.ok(!truncated.ok && /truncated/.test(truncated.problem), JSON.stringify(truncated));
      const noStop = await write("nostop", good.subarray(0, good.length - 40));
      assert.ok(!noStop.ok && /truncated/.test(noStop.problem), JSON.stringify(noStop));
      const flipped = Buffer.from(good);
      flipped.write("XXXX", good.indexOf(Buffer.alloc(16, 7)) + 8, "latin1");
      const corrupt = await write("corrupt", flipped);
      assert.equal(corrupt.ok, true, "a flipped payload byte is invisible to a framing check (documented limit)");
      const badHeader = Buffer.from(good);
      badHeader.write("dat4", good.indexOf("zero"), "latin1");
      const framing = await write("framing", badHeader);
      assert.ok(!framing.ok && /no valid frame header/.test(framing.problem), JSON.stringify(framing));
      const extra = await write("extra", Buffer.concat([good, Buffer.from("junk")]));
      assert.ok(!extra.ok && /unexpected bytes/.test(extra.problem));
      const empty = await write("empty", Buffer.alloc(0));
      assert.equal(empty.ok, false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("refuses a corrupt length field with a reason, without allocating what it claims", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vmbs-stream-"));
    try {
      const header = (kind: string, length: string) => Buffer.from(`${kind} ${"0".repeat(16)} ${length}\r\n`, "latin1");
      const rows: [string, Buffer, number, RegExp][] = [
        ["a meta length of 2^64-1", header("meta", "f".repeat(16)), 0, /meta frame claims 18446744073709552000 bytes but the file ends at 40/],
        ["a meta length past the end", header("meta", "0000000100000000"), 1024 * 1024, /meta frame claims 4294967296 bytes but the file ends/],
        // A sparse file larger than the limit: the claim fits the file, and is still refused.
        ["a meta length over the limit", header("meta", (MAX_JSON_FRAME + 1).toString(16).padStart(16, "0")), MAX_JSON_FRAME * 2, /over the 67108864-byte limit/],
      ];
      const compressedMeta = Buffer.from(JSON.stringify({ compressed: true }));
      const compressed = Buffer.concat([frame("meta", 0, compressedMeta.length), compressedMeta, Buffer.from("\r\n"), frame("stop", 0, 0)]);
      rows.push(["a trailer length of 2^63", Buffer.concat([compressed, Buffer.from("[]\r\n"), header("comp", "8" + "0".repeat(15))]), 0, /trailer claims .* more than the file holds/]);
      for (const [name, head, sparseSize, reason] of rows) {
        const path = join(dir, name.replace(/\W+/g, "-"));
        await writeFile(path, head);
        if (sparseSize > head.length) await truncate(path, sparseSize);
        const before = process.memoryUsage().arrayBuffers;
        const result = await checkStreamFile(path);
        const grown = process.memoryUsage().arrayBuffers - before;
        assert.ok(!result.ok && reason.test(result.problem), `${name}: ${JSON.stringify(result)}`);
        assert.ok(grown < 8 * 1024 * 1024, `${name}: ${grown} bytes allocated`);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
