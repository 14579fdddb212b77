import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { createAgentHarness, type AgentHarness } from "@vmbs/lab";
import { localFileLister, type FileLister } from "@vmbs/chain";
import type { BackupEvent } from "@vmbs/contracts";

const completed = (requestId: string) => (e: BackupEvent) => e.requestId === requestId && e.type !== "started";

describe("backup agent: one backup reads its chain folder twice", () => {
  let h: AgentHarness;
  /** Every folder the agent listed: each read of a chain folder lists the folder itself once, then its sub-folders. */
  const listed: string[] = [];
  const counting: FileLister = {
    ...localFileLister,
    readdir: (path) => {
      listed.push(path);
      return localFileLister.readdir(path);
    },
  };
  before(async () => {
    h = await createAgentHarness("chainreads");
    await h.startAgent({}, { chainFiles: counting });
  });
  after(async () => h?.close());

  it("an incremental backup: one read before (rotation's, handed to the check and the run), one after the engine wrote", async () => {
    const dom = await h.lab.createDomain({ name: `${h.lab.domainPrefix}${Date.now().toString(16)}-reads` });
    h.publishRaw(JSON.stringify({ domain: dom.name, level: "full", requestId: "reads-full" }));
    const full = await h.waitEvent(completed("reads-full"));
    assert.equal(full.type, "completed", JSON.stringify(full));

    listed.length = 0;
    h.publishRaw(JSON.stringify({ domain: dom.name, level: "auto", requestId: "reads-inc" }));
    const inc = await h.waitEvent(completed("reads-inc"));
    assert.equal(inc.type === "completed" && inc.level, "inc", JSON.stringify(inc));
    const folder = join(h.backupRoot, dom.name);
    assert.equal(listed.filter((p) => p === folder).length, 2, `recursive reads of ${folder}: ${JSON.stringify(listed)}`);
  });
});
