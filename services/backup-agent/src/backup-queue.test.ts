import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { BackupLevel } from "@vmbs/contracts";
import { answerFor, createBackupQueue, type Admission } from "./backup-queue.js";

/** A run the test finishes by hand. */
interface Run {
  domain: string;
  level: BackupLevel;
  finish(): void;
}

/** A queue whose runs wait for the test; `runs` lists them in the order they started. */
function harness(maxPerDomain: number, maxRunning: number) {
  const runs: Run[] = [];
  const submit = createBackupQueue<string>({ maxPerDomain, maxRunning });
  const add = (domain: string, level: BackupLevel): Admission<string> =>
    submit(domain, level, () => new Promise<string>((resolve) => {
      const n = runs.length + 1;
      runs.push({ domain, level, finish: () => resolve(`${domain}/${level}#${n}`) });
    }));
  return { runs, add };
}
const tick = () => new Promise((r) => setImmediate(r));
const kinds = (admissions: Admission<string>[]) => admissions.map((a) => (a.kind === "refused" ? "refused" : a.joined ? "joined" : "run"));

describe("backup queue: coalescing and bounds", () => {
  const rows: { name: string; maxPerDomain: number; commands: [string, BackupLevel][]; expect: string[] }[] = [
    {
      name: "the first command runs, identical ones behind it share one run",
      maxPerDomain: 10,
      commands: [["a", "auto"], ["a", "auto"], ["a", "auto"], ["a", "auto"]],
      expect: ["run", "run", "joined", "joined"],
    },
    {
      name: "another level is a run of its own; a later command of a waiting level joins that one",
      maxPerDomain: 10,
      commands: [["a", "auto"], ["a", "full"], ["a", "auto"], ["a", "full"], ["a", "inc"]],
      expect: ["run", "run", "run", "joined", "run"],
    },
    {
      name: "beyond the bound a domain's commands are refused, joiners included",
      maxPerDomain: 3,
      commands: [["a", "auto"], ["a", "auto"], ["a", "auto"], ["a", "auto"], ["a", "full"]],
      expect: ["run", "run", "joined", "refused", "refused"],
    },
    {
      name: "the bound is per domain: a flooded domain does not refuse another",
      maxPerDomain: 2,
      commands: [["a", "auto"], ["a", "auto"], ["a", "auto"], ["b", "auto"], ["b", "full"]],
      expect: ["run", "run", "refused", "run", "run"],
    },
  ];
  // The first command has started when the others arrive, as in the agent.
  for (const row of rows)
    it(row.name, async () => {
      const q = harness(row.maxPerDomain, 4);
      const [head, ...rest] = row.commands;
      const first = q.add(...head!);
      await tick();
      const admissions = [first, ...rest.map(([d, l]) => q.add(d, l))];
      assert.deepEqual(kinds(admissions), row.expect);
    });

  it("joiners get the answer of the run they joined; the running one is never joined", async () => {
    const q = harness(10, 4);
    const first = q.add("a", "auto");
    await tick();
    const [second, third] = [q.add("a", "auto"), q.add("a", "auto")];
    assert.equal(q.runs.length, 1, "the second run waits for the first");
    q.runs[0]!.finish();
    await tick();
    assert.equal(q.runs.length, 2);
    const fourth = q.add("a", "auto");
    q.runs[1]!.finish();
    await tick();
    q.runs[2]!.finish();
    const answers = await Promise.all([first, second, third, fourth].map((a) => (a.kind === "queued" ? a.result : undefined)));
    assert.deepEqual(answers, ["a/auto#1", "a/auto#2", "a/auto#2", "a/auto#3"]);
  });

  it("a finished run frees its commands' places: the domain is accepted again, the refusal count starts over", async () => {
    const q = harness(2, 4);
    q.add("a", "auto");
    await tick();
    q.add("a", "auto");
    const refused = [q.add("a", "auto"), q.add("a", "auto")];
    assert.deepEqual(refused.map((a) => a.kind === "refused" && [a.held, a.refusedInFlood]), [[2, 1], [2, 2]]);
    await tick();
    q.runs[0]!.finish();
    await tick();
    q.runs[1]!.finish();
    await tick();
    assert.deepEqual(kinds([q.add("a", "auto"), q.add("a", "auto"), q.add("a", "auto")]), ["run", "joined", "refused"]);
    const again = q.add("a", "auto");
    assert.equal(again.kind === "refused" && again.refusedInFlood, 2);
  });

  it("runs of different domains go side by side up to maxRunning, then in the order they asked", async () => {
    const q = harness(10, 2);
    for (const d of ["a", "b", "c", "d"]) q.add(d, "auto");
    await tick();
    assert.deepEqual(q.runs.map((r) => r.domain), ["a", "b"]);
    q.runs[1]!.finish();
    await tick();
    assert.deepEqual(q.runs.map((r) => r.domain), ["a", "b", "c"]);
    q.runs[0]!.finish();
    await tick();
    assert.deepEqual(q.runs.map((r) => r.domain), ["a", "b", "c", "d"]);
  });

  it("a domain's waiting run holds no slot: a flooded domain leaves the others theirs", async () => {
    const q = harness(10, 2);
    q.add("a", "auto");
    q.add("a", "full");
    q.add("a", "inc");
    q.add("b", "auto");
    await tick();
    assert.deepEqual(q.runs.map((r) => `${r.domain}/${r.level}`), ["a/auto", "b/auto"]);
  });
});

describe("answerFor", () => {
  const event = { subject: "vmbs.evt.backup.h.completed", msgId: "vmbs.evt.backup.h.completed#run-1", payload: { type: "completed", runId: "run-1", requestId: "first" } };
  it("keeps the run, takes the joiner's requestId and a message id of its own", () => {
    assert.deepEqual(answerFor(event, "second", "h.abc"), {
      subject: event.subject,
      msgId: "vmbs.evt.backup.h.completed#run-1@h.abc",
      payload: { type: "completed", runId: "run-1", requestId: "second" },
    });
  });
  it("a joiner without a requestId gets none, not the first command's", () => {
    assert.equal(JSON.stringify(answerFor(event, undefined, "h.abc").payload), JSON.stringify({ type: "completed", runId: "run-1" }));
  });
});
