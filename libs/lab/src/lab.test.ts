import * as assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { after, before, test } from "node:test";
import { execa } from "execa";
import { createLab, ensureLibvirt, imageDigest, type Lab } from "./index.js";
import { confirmInLog, domainLogPath, logSize } from "./qemu-log.js";
import { hmp } from "./virsh.js";

const URI = "qemu:///system";
const MiB = 1024 * 1024;
const VDA = "/machine/peripheral/virtio-disk0/virtio-backend";

/** sha256 of a disk of `sizeMiB` zeros with `fills` applied, computed in memory. */
function expectedDigest(sizeMiB: number, fills: { offset: number; length: number; pattern: number }[]): string {
  const disk = Buffer.alloc(sizeMiB * MiB);
  for (const f of fills) disk.fill(f.pattern, f.offset, f.offset + f.length);
  return createHash("sha256").update(disk).digest("hex");
}

async function virshOk(args: string[]): Promise<boolean> {
  const r = await execa("virsh", ["-c", URI, ...args], { reject: false, env: { LC_ALL: "C.UTF-8" } });
  return r.exitCode === 0;
}

async function state(name: string): Promise<string> {
  const r = await execa("virsh", ["-c", URI, "domstate", name], { env: { LC_ALL: "C.UTF-8" } });
  return r.stdout.trim();
}

let lab: Lab;

before(async () => {
  await ensureLibvirt(URI);
  lab = await createLab({ uri: URI });
});

after(async () => {
  await lab.cleanup();
});

test("running domain with an awkward name: write, digest, suspend-consistency, cleanup", async () => {
  const name = `${lab.domainPrefix}${randomBytes(4).toString("hex")} win 11 ü`;
  const domain = await lab.createDomain({ name });
  assert.equal(domain.name, name);
  assert.equal(domain.target, "vda");
  assert.ok(existsSync(domain.diskPath));
  assert.match(domain.diskPath, /\/vmbs-lab-[0-9a-f]{8}\.qcow2$/);
  assert.equal(await state(name), "running");

  const before = await lab.diskDigest(name);
  assert.equal(before, expectedDigest(64, []));
  assert.equal(await state(name), "running", "diskDigest resumes a running domain");

  await lab.writeGuest(name, { offset: 0, length: 4 * MiB, pattern: 0xab });
  const afterWrite = await lab.diskDigest(name);
  assert.notEqual(afterWrite, before);
  assert.equal(afterWrite, expectedDigest(64, [{ offset: 0, length: 4 * MiB, pattern: 0xab }]));

  // A domain the caller paused stays paused, and the file then matches what diskDigest saw.
  await execa("virsh", ["-c", URI, "suspend", name]);
  assert.equal(await lab.diskDigest(name), afterWrite);
  assert.equal(await state(name), "paused");
  assert.equal(await imageDigest(domain.diskPath), afterWrite);
  await execa("virsh", ["-c", URI, "resume", name]);

  await lab.cleanup();
  assert.equal(await virshOk(["dominfo", name]), false, "domain is gone");
  assert.equal(existsSync(domain.diskPath), false, "image is gone");
  await lab.cleanup(); // idempotent
});

test("large live write is split into chunks", async () => {
  const domain = await lab.createDomain({ sizeMiB: 256 });
  const fill = { offset: MiB + 512, length: 200 * MiB, pattern: 0x5c };
  await lab.writeGuest(domain.name, fill);
  assert.equal(await lab.diskDigest(domain.name), expectedDigest(256, [fill]));
});

test("shut-off domain: write goes into the image", async () => {
  const domain = await lab.createDomain({ running: false });
  assert.equal(await state(domain.name), "shut off");
  const fill = { offset: 2 * MiB, length: 3 * MiB, pattern: 0x01 };
  await lab.writeGuest(domain.name, fill);
  assert.equal(await lab.diskDigest(domain.name), expectedDigest(64, [fill]));
});

test("writeGuest rejects bad input and unknown domains", async () => {
  await assert.rejects(lab.writeGuest("vmbs-lab-nope", { offset: 0, length: 1, pattern: 1 }), /not created by this lab/);
  const domain = await lab.createDomain({ running: false });
  await assert.rejects(lab.writeGuest(domain.name, { offset: 0, length: 1, pattern: 256 }), RangeError);
  // Past the end of the 64 MiB disk: qemu-io fails and the error must surface.
  await assert.rejects(lab.writeGuest(domain.name, { offset: 64 * MiB, length: MiB, pattern: 1 }), /failed/);
  const live = await lab.createDomain();
  await assert.rejects(lab.writeGuest(live.name, { offset: 64 * MiB, length: MiB, pattern: 1 }), /past vda/);
  // Past the range check, QEMU itself fails: HMP still says rc 0 with no text, only the log tells.
  const log = (await domainLogPath(URI, live.name))!;
  const from = await logSize(log);
  assert.equal(await hmp(URI, live.name, `qemu-io -d ${VDA} "write -P 0x01 ${64 * MiB} 1"`), "");
  await assert.rejects(confirmInLog(log, from, `wrote 1/1 bytes at offset ${64 * MiB}`, "raw write"), /write failed/);
});

test("tempDir is under /var/tmp, mode 755, and removed by cleanup", async () => {
  const dir = await lab.tempDir("vmbs-lab-test-");
  assert.ok(dir.startsWith("/var/tmp/vmbs-lab-test-"));
  const { stat } = await import("node:fs/promises");
  assert.equal((await stat(dir)).mode & 0o777, 0o755);
  await lab.cleanup();
  assert.equal(existsSync(dir), false);
});
