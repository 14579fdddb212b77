import { test } from "node:test";
import assert from "node:assert/strict";
import { tpm2StatePath } from "./tpm-state.js";

test("tpm2StatePath: libvirt's swtpm folder of the UUID (lower case); anything else than a UUID is refused", () => {
  assert.equal(tpm2StatePath("2280EBB7-8599-4a2d-81dd-469c0cc4261f"), "/var/lib/libvirt/swtpm/2280ebb7-8599-4a2d-81dd-469c0cc4261f/tpm2/tpm2-00.permall");
  assert.equal(tpm2StatePath("2280ebb7-8599-4a2d-81dd-469c0cc4261f", "/srv/swtpm"), "/srv/swtpm/2280ebb7-8599-4a2d-81dd-469c0cc4261f/tpm2/tpm2-00.permall");
  for (const bad of ["", "../etc", "2280ebb7-8599-4a2d-81dd-469c0cc4261f/../x", "not-a-uuid"]) assert.throws(() => tpm2StatePath(bad), RangeError, bad);
});
