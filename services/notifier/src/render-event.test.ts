import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseNotifyUrl } from "@vmbs/contracts";
import { renderEvent } from "./render-event.js";
import { matchesFilter, globMatch } from "./match-target.js";

describe("renderEvent", () => {
  it("a failed backup names host, domain, reason and what to do", () => {
    const n = renderEvent("vmbs.evt.backup.hv1.failed", { type: "failed", host: "hv1", domain: "win 11", reason: "disk full", at: "t" })!;
    assert.equal(n.severity, "failure");
    assert.equal(n.title, "VM-Babysitter: win 11 on hv1: backup failed");
    assert.match(n.message, /Host: hv1\nDomain: win 11\nEvent: backup failed at t\nReason: disk full/);
    assert.match(n.message, /What to do: .*vmbs backup --domain 'win 11'/);
  });
  it("an instant VM found after a restart names it and how to finish or abandon it", () => {
    const n = renderEvent("vmbs.evt.restore.hv1.attention", { type: "attention", host: "hv1", operation: "instant", domain: "db", target: "db now", reason: "its exports of vda were started again", at: "t" })!;
    assert.equal(n.severity, "warning");
    assert.match(n.message, /Reason: its exports of vda were started again/);
    assert.match(n.message, /What to do: .*vmbs instant-restore --finish 'db now' --yes \(or remove it with --abandon\)/);
  });
  const rows: [string, Record<string, unknown>, string | undefined][] = [
    ["vmbs.evt.chain.hv1.attention", { domain: "db", reason: "foreign checkpoint" }, "warning"],
    ["vmbs.evt.backup.hv1.completed", { domain: "db", bytesWritten: 10, durationMs: 2000 }, "success"],
    ["vmbs.evt.backup.hv1.started", { domain: "db" }, "info"],
    ["vmbs.evt.notify.hv1.failed", { target: "json://h/***", reason: "HTTP 500" }, "failure"],
    ["vmbs.cmd.backup.hv1", {}, undefined],
  ];
  for (const [subject, event, severity] of rows)
    it(`${subject} → ${severity ?? "not an event"}`, () => assert.equal(renderEvent(subject, event)?.severity, severity));
});

describe("matchesFilter", () => {
  const failed = renderEvent("vmbs.evt.backup.hv1.failed", { domain: "win 11", reason: "x" })!;
  const done = renderEvent("vmbs.evt.backup.hv1.completed", { domain: "win 11" })!;
  const attention = renderEvent("vmbs.evt.chain.hv2.attention", { domain: "db", reason: "x" })!;
  const rows: [string, typeof failed, boolean][] = [
    ["json://h/p", failed, true],
    ["json://h/p", attention, true],
    ["json://h/p", done, false],
    ["json://h/p?severity=success", done, true],
    ["json://h/p?severity=failure", attention, false],
    ["json://h/p?hosts=hv2", failed, false],
    ["json://h/p?hosts=hv*", attention, true],
    ["json://h/p?domains=win*", failed, true],
    ["json://h/p?domains=win*", attention, false],
    ["json://h/p?events=chain.*", failed, false],
    ["json://h/p?events=attention", attention, true],
  ];
  for (const [url, n, want] of rows) it(`${url} ${want ? "gets" : "skips"} ${n.title}`, () => assert.equal(matchesFilter(parseNotifyUrl(url).filter, n), want));
  it("globs are anchored and treat regex characters literally", () => {
    assert.equal(globMatch("a.b", "axb"), false);
    assert.equal(globMatch("win?1", "win 1"), true);
    assert.equal(globMatch("db", "db2"), false);
  });
});
