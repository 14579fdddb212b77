import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { describeReply } from "./reply-lines.js";

/* A restore service's reply as a person reads it on a terminal (scripts get the reply's JSON unchanged). */

describe("describeReply", () => {
  it("a field per line, lists below their name, empty lists and refusals said plainly", () => {
    const lines = describeReply(
      {
        domain: "web-copy",
        images: ["/var/lib/libvirt/images/web-copy.vda.qcow2", "/var/lib/libvirt/images/web-copy.vdb.qcow2"],
        defined: true,
        stripped: [],
        disks: [{ target: "vda", format: "qcow2" }],
        refusal: "the target exists",
      },
      false,
    );
    assert.deepEqual(lines, [
      "domain  web-copy",
      "images",
      "  - /var/lib/libvirt/images/web-copy.vda.qcow2",
      "  - /var/lib/libvirt/images/web-copy.vdb.qcow2",
      "defined  true",
      "stripped  (none)",
      "disks",
      "  - target  vda",
      "    format  qcow2",
      "refusal  the target exists",
    ]);
  });

  it("colours a refusal red and names bold only when asked to", () => {
    const [name, refusal] = describeReply({ domain: "web", refusal: "no" }, true);
    assert.equal(name, "\x1b[1mdomain\x1b[0m  web");
    assert.equal(refusal, "\x1b[1mrefusal\x1b[0m  \x1b[31mno\x1b[0m");
  });
});
