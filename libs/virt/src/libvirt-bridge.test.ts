import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createLibvirt } from "./libvirt.js";
import { LibvirtError } from "./virt-errors.js";

/* The bridge's failure paths; its answers against a real libvirtd are tested in libs/lab (libvirt-edge.test.ts). */

async function rejection(p: Promise<unknown>): Promise<LibvirtError> {
  const err = await p.then(
    () => assert.fail("expected a rejection"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof LibvirtError, String(err));
  return err;
}

describe("libvirt bridge failures", () => {
  it("an interpreter that cannot be run: every call says so, and each call tries again", async () => {
    const libvirt = createLibvirt("qemu:///system", { python: "/nonexistent/python3" });
    for (let i = 0; i < 2; i++) {
      const err = await rejection(libvirt.domainState("x"));
      assert.match(err.message, /^libvirt domainState: the libvirt bridge \(\/nonexistent\/python3\) could not run: spawn \/nonexistent\/python3 ENOENT/);
      assert.equal(err.code, undefined);
    }
  });

  it("a bridge that exits at once fails the pending calls with its exit code", async () => {
    const libvirt = createLibvirt("qemu:///system", { python: "/bin/false" });
    const errors = await Promise.all([rejection(libvirt.checkpoints("a")), rejection(libvirt.jobActive("b"))]);
    assert.match(errors[0]!.message, /^libvirt checkpoints: .*ended \(exit code 1\)/);
    assert.match(errors[1]!.message, /^libvirt jobActive: .*ended \(exit code 1\)/);
  });
});
