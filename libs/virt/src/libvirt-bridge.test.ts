import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { callTimeoutMs } from "./libvirt-bridge.js";
import { createLibvirt } from "./libvirt.js";
import { LibvirtError, LibvirtTimeoutError } from "./virt-errors.js";

/* The bridge's failure paths; its answers against a real libvirtd are tested in libs/lab (libvirt-edge.test.ts). */

/** A validator for assert.rejects: a LibvirtError whose message matches and that carries no libvirt code. */
const bridgeFailure = (message: RegExp) => (err: unknown) => {
  assert.ok(err instanceof LibvirtError, String(err));
  assert.match(err.message, message);
  assert.equal(err.libvirtCode, undefined);
  return true;
};

describe("libvirt bridge failures", () => {
  it("an interpreter that cannot be run: every call says so, and each call tries again", async () => {
    const libvirt = createLibvirt("qemu:///system", { python: "/nonexistent/python3" });
    for (let i = 0; i < 2; i++) {
      await assert.rejects(
        libvirt.domainState("x"),
        bridgeFailure(/^libvirt domainState: the libvirt bridge \(\/nonexistent\/python3\) could not run: spawn \/nonexistent\/python3 ENOENT/),
      );
    }
  });

  it("a bridge that exits at once fails the pending calls with its exit code", async () => {
    const libvirt = createLibvirt("qemu:///system", { python: "/bin/false" });
    await Promise.all([
      assert.rejects(libvirt.checkpoints("a"), bridgeFailure(/^libvirt checkpoints: .*ended \(exit code 1\)/)),
      assert.rejects(libvirt.jobActive("b"), bridgeFailure(/^libvirt jobActive: .*ended \(exit code 1\)/)),
    ]);
  });

  it("a libvirtd that accepts and never answers: the call fails with LibvirtTimeoutError, the wedged bridge is replaced, other URIs work", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vmbs-mute-libvirtd-"));
    const socketPath = join(dir, "libvirt-sock");
    const held: Socket[] = [];
    // A real listening unix socket: libvirt's client connects, sends its first RPC and waits for an answer forever.
    const mute = createServer((s) => void held.push(s));
    await new Promise<void>((resolve) => mute.listen(socketPath, resolve));
    const wedged = createLibvirt(`qemu+unix:///system?socket=${socketPath}`, { timeoutMs: 1500 });
    const good = createLibvirt("qemu:///system"); // default limit: a busy machine may take seconds to start a bridge
    const bridges = async () => (await execa("pgrep", ["-f", socketPath], { reject: false })).stdout.split("\n").filter(Boolean);
    try {
      for (const op of ["checkpoints", "jobActive"] as const) {
        const started = Date.now();
        await assert.rejects(wedged[op]("x"), (err: unknown) => {
          assert.ok(err instanceof LibvirtTimeoutError, String(err));
          assert.equal(err.name, "LibvirtTimeoutError");
          assert.equal(err.op, op);
          assert.equal(err.timeoutMs, 1500);
          assert.ok(err.cause instanceof Error);
          assert.match(err.message, new RegExp(`^libvirt ${op}: no answer within 1.5 s .*restarted`));
          return true;
        });
        const took = Date.now() - started;
        assert.ok(took >= 1400 && took < 10_000, `timed out after ${took} ms`);
        // The hung process was killed: at most the one a later call starts is left (none until then).
        assert.ok((await bridges()).length <= 1, `bridges left: ${(await bridges()).join(", ")}`);
      }
      assert.ok(held.length >= 2, "each call came from a fresh bridge process, which connected anew");
      assert.ok(Array.isArray(await good.listPersistentDomains()), "a bridge on a working URI answers meanwhile");
      assert.ok(Array.isArray(await good.listPersistentDomains()), "and keeps answering");
    } finally {
      await wedged.close();
      await good.close();
      for (const s of held) s.destroy();
      mute.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("slow calls (start, destroy, deleteCheckpoint) get three times the limit", () => {
    assert.deepEqual(
      ["domainState", "abortJob", "start", "destroy", "deleteCheckpoint"].map((op) => callTimeoutMs(op, 1000)),
      [1000, 1000, 3000, 3000, 3000],
    );
  });

  it("reports libvirt's and QEMU's versions as dotted numbers (what the status shows per host)", async () => {
    const libvirt = createLibvirt("qemu:///system");
    try {
      const v = await libvirt.versions();
      assert.match(v.libvirt, /^\d+\.\d+\.\d+$/);
      assert.match(v.qemu, /^\d+\.\d+\.\d+$/);
      assert.equal(v.libvirt, (await execa("virsh", ["-c", "qemu:///system", "version", "--daemon"])).stdout.match(/library: libvirt (\d+\.\d+\.\d+)/)?.[1]);
    } finally {
      await libvirt.close();
    }
  });
});
