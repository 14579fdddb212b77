import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parsePayload } from "./parse-payload.js";
import { restoreCheckpointsRequestSchema, restoreRunRequestSchema } from "./restore.js";
import { subjects } from "./subjects.js";

describe("restore contract", () => {
  const runs: [string, unknown, RegExp | undefined][] = [
    ["as a new domain", { domain: "vm", as: "vm-copy", checkpoint: 2 }, undefined],
    ["in place with consent, one disk", { domain: "vm", inPlace: true, consent: true, disk: "vdb" }, undefined],
    ["neither target", { domain: "vm" }, /exactly one of `as` and `inPlace`/],
    ["both targets", { domain: "vm", as: "x", inPlace: true }, /exactly one of `as` and `inPlace`/],
    ["negative checkpoint", { domain: "vm", as: "x", checkpoint: -1 }, /checkpoint/],
    ["relative from", { domain: "vm", as: "x", from: "mirror" }, /from/],
    ["a NUL byte in from", { domain: "vm", as: "x", from: "/backups\u0000/etc" }, /from: must not contain a NUL byte/],
    ["a NUL byte in targetDir", { domain: "vm", as: "x", targetDir: "/img\u0000x" }, /targetDir: must not contain a NUL byte/],
    ["a path as set", { domain: "vm", as: "x", set: "../etc" }, /set: must be a folder name/],
    ["a path as new name", { domain: "vm", as: "../x" }, /as/],
    ["a disk that is not a target name", { domain: "vm", as: "x", disk: "vda;rm" }, /disk/],
    ["unknown field", { domain: "vm", as: "x", force: true }, /force|unrecognized/i],
  ];
  for (const [what, body, refused] of runs)
    it(`run request: ${what}`, () => {
      const r = parsePayload(restoreRunRequestSchema, JSON.stringify(body));
      if (!refused) assert.ok(r.ok, r.ok ? "" : r.reason);
      else assert.match(r.ok ? "accepted" : r.reason, refused);
    });

  it("checkpoints request defaults to the active set; endpoints are per host", () => {
    assert.ok(parsePayload(restoreCheckpointsRequestSchema, '{"domain":"win 11"}').ok);
    assert.equal(subjects.svc.restoreEndpoint("hv1", "plan"), "vmbs.svc.restore.hv1.plan");
    assert.equal(subjects.evt.restore("hv1", "progress"), "vmbs.evt.restore.hv1.progress");
    assert.throws(() => subjects.svc.restoreEndpoint("a.b", "run"));
  });
});
