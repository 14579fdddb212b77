import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createLibvirt } from "./libvirt.js";
import { LibvirtError } from "./virt-errors.js";

/* The bridge's failure paths; its answers against a real libvirtd are tested in libs/lab (libvirt-edge.test.ts). */

/** A validator for assert.rejects: a LibvirtError whose message matches and that carries no libvirt code. */
const bridgeFailure = (message: RegExp) => (err: unknown) => {
  assert.ok(err instanceof LibvirtError, String(err));
  assert.match(err.message, message);
  assert.equal(err.code, undefined);
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
});
