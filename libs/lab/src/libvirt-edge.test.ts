// @vmbs/virt's libvirt connection (the Python bridge) against the real daemon, on lab domains.
import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, test } from "node:test";
import { execa } from "execa";
import { createLibvirt, liveBitmaps, LibvirtError, waitForDomainState, type Libvirt } from "@vmbs/virt";
import { join } from "node:path";
import { createLab, waitFor, type Lab, type LabDomain } from "./index.js";

const URI = "qemu:///system";
/** libvirt's virErrorNumber for "no such domain". */
const VIR_ERR_NO_DOMAIN = 42;

let lab: Lab;
let libvirt: Libvirt;
let dom: LabDomain;

const virsh = (...args: string[]) => execa("virsh", ["-q", "-c", URI, ...args]);

before(async () => {
  lab = await createLab({ uri: URI });
  libvirt = createLibvirt(URI);
  // Quotes, a semicolon, spaces and a non-ASCII letter: nothing may read this name as syntax.
  dom = await lab.createDomain({ name: `${lab.domainPrefix}${randomBytes(4).toString("hex")} it's "x"; rm -rf ü` });
});

after(async () => {
  await libvirt.close();
  await lab.cleanup();
});

test("a domain is found by its exact name only, with its state and disk", async () => {
  assert.deepEqual(await libvirt.domainInfo(dom.name), { name: dom.name, state: "running", persistent: true });
  assert.equal(await libvirt.domainInfo(dom.name.slice(0, -1)), undefined, "a prefix is not the domain");
  const uuid = (await virsh("domuuid", "--domain", dom.name)).stdout.trim();
  assert.equal(await libvirt.domainInfo(uuid), undefined, "a UUID is not a name");
  assert.ok((await libvirt.listPersistentDomains()).some((d) => d.name === dom.name && d.state === "running"));
  assert.deepEqual(await libvirt.diskImages(dom.name), [{ target: "vda", path: dom.diskPath }]);
  assert.equal(await libvirt.jobActive(dom.name), false);
  assert.equal(await libvirt.backupBlockJobActive(dom.name), false);
});

test("a backup job left running is seen (job and block job), and gone after an abort", async () => {
  // --startonly begins the libvirt backup job and exits, as an engine killed mid-run leaves it (copy: no checkpoint).
  const out = join(await lab.tempDir("edge-job-"), "chain");
  await execa("virtnbdbackup", [`--domain=${dom.name}`, "--level=copy", `--output=${out}`, "--noprogress", "--startonly"], { timeout: 60_000 });
  assert.equal(await libvirt.jobActive(dom.name), true);
  assert.equal(await libvirt.backupBlockJobActive(dom.name), true);
  await libvirt.abortJob(dom.name);
  await waitFor(async () => !(await libvirt.jobActive(dom.name)) && !(await libvirt.backupBlockJobActive(dom.name)), { timeoutMs: 30_000, what: "the job to end" });
});

test("libvirt's refusal comes back as a LibvirtError with its code and words", async () => {
  await assert.rejects(libvirt.checkpoints(`${dom.name}-missing`), (err: unknown) => {
    assert.ok(err instanceof LibvirtError);
    assert.equal(err.libvirtCode, VIR_ERR_NO_DOMAIN);
    assert.match(err.message, /no domain with matching name/);
    return true;
  });
});

test("checkpoints and live bitmaps are read and deleted through the connection", async () => {
  await virsh("checkpoint-create-as", "--domain", dom.name, "--name", "virtnbdbackup.0");
  await virsh("checkpoint-create-as", "--domain", dom.name, "--name", "virtnbdbackup.1");
  assert.deepEqual(await libvirt.checkpoints(dom.name), ["virtnbdbackup.0", "virtnbdbackup.1"]);
  assert.deepEqual((await liveBitmaps(libvirt, dom.name)).map((b) => b.name).sort(), ["virtnbdbackup.0", "virtnbdbackup.1"]);
  await libvirt.deleteCheckpoint(dom.name, "virtnbdbackup.1", false);
  assert.deepEqual(await libvirt.checkpoints(dom.name), ["virtnbdbackup.0"]);
  assert.deepEqual((await liveBitmaps(libvirt, dom.name)).map((b) => b.name), ["virtnbdbackup.0"], "a live delete removes the bitmap too");
});

test("state changes: paused start, destroy, and a QEMU killed under libvirt reads as crashed", async () => {
  await libvirt.destroy(dom.name);
  assert.equal(await libvirt.domainState(dom.name), "shut off");
  assert.equal(await libvirt.crashed(dom.name), false, "a destroy is not a crash");
  await libvirt.startPaused(dom.name);
  assert.equal(await libvirt.domainState(dom.name), "paused");
  const pid = Number((await execa("pgrep", ["-f", `guest=${dom.name.replace(/[^A-Za-z0-9-]/g, ".")}`])).stdout.split("\n")[0]);
  assert.ok(pid > 0, "the domain's QEMU process is found");
  process.kill(pid, "SIGKILL");
  assert.ok(await waitForDomainState(libvirt, dom.name, "shut off", { timeoutMs: 10_000, intervalMs: 100 }), "libvirt saw QEMU die");
  assert.equal(await libvirt.crashed(dom.name), true);
  await libvirt.start(dom.name);
  assert.equal(await libvirt.domainState(dom.name), "running");
});

test("calls after close() open a new connection; many calls at once all get their own answer", async () => {
  await libvirt.close();
  const names = await Promise.all(Array.from({ length: 50 }, () => libvirt.domainInfo(dom.name)));
  assert.ok(names.every((d) => d?.name === dom.name));
});
