import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parseNotifyUrl, notifyUrlLabel } from "./notify-targets.js";

describe("parseNotifyUrl", () => {
  const rows: [string, Record<string, unknown>][] = [
    ["json://hooks.example:8080/in?x=1", { kind: "json", url: "http://hooks.example:8080/in?x=1" }],
    ["jsons://u:p%40@hooks.example/in", { kind: "json", url: "https://hooks.example/in", basicAuth: "u:p@" }],
    ["smtp://mail.example?from=a@b.c&to=d@e.f,g@h.i", { kind: "smtp", host: "mail.example", port: 25, secure: false, from: "a@b.c", to: ["d@e.f", "g@h.i"] }],
    ["smtps://me:s%40cret@mail.example?from=a@b.c&to=d@e.f", { kind: "smtp", port: 465, secure: true, user: "me", pass: "s@cret" }],
    ["unraid://", { kind: "unraid", user: "root" }],
    ["unraid://admin@tower:2222", { kind: "unraid", user: "admin", host: "tower", port: 2222 }],
    ["ntfys://ntfy.sh/backups", { kind: "ntfy", url: "https://ntfy.sh", topic: "backups" }],
    ["gotify://push.example/sub/Tok", { kind: "gotify", url: "http://push.example/sub", token: "Tok" }],
    ["discord://123/abc", { kind: "discord", url: "https://discord.com/api/webhooks/123/abc" }],
    ["slack://T1/B2/c3", { kind: "slack", url: "https://hooks.slack.com/services/T1/B2/c3" }],
    ["tgram://123:AbC/-42", { kind: "tgram", url: "https://api.telegram.org/bot123:AbC/sendMessage", chatId: "-42" }],
    ["json://h/p?severity=info&events=backup.*,attention&hosts=hv*&domains=win%2A", { filter: { minSeverity: "info", events: ["backup.*", "attention"], hosts: ["hv*"], domains: ["win*"], digest: true } }],
    ["json://h/p?digest=no", { filter: { minSeverity: "warning", events: [], hosts: [], domains: [], digest: false } }],
  ];
  for (const [url, want] of rows)
    it(`reads ${url}`, () => {
      const t = parseNotifyUrl(url) as unknown as Record<string, unknown>;
      for (const [k, v] of Object.entries(want)) assert.deepEqual(t[k], v, k);
    });

  it("defaults to failed and attention events (severity warning) and gives a stable id", () => {
    const t = parseNotifyUrl("json://h/p");
    assert.deepEqual(t.filter, { minSeverity: "warning", events: [], hosts: [], domains: [], digest: true });
    assert.equal(t.id, parseNotifyUrl("json://h/p").id);
    assert.notEqual(t.id, parseNotifyUrl("json://h/q").id);
  });

  const bad: [string, RegExp][] = [
    ["smtp://mail.example?to=d@e.f", /from=ADDRESS is required/],
    ["smtp://mail.example?from=a@b.c", /to=ADDRESS/],
    ["ntfy://h", /ntfy:\/\/host\[:port\]\/topic/],
    ["discord://123", /discord:\/\/webhook_id\/webhook_token/],
    ["mailto://x", /unknown scheme mailto/],
    ["json://h/p?severity=loud", /severity must be one of/],
    ["json://h/p?digest=maybe", /digest must be yes or no/],
    ["not a url", /not a URL/],
  ];
  for (const [url, re] of bad) it(`refuses ${url}`, () => assert.throws(() => parseNotifyUrl(url), { name: "NotifyUrlError", message: re }));
});

describe("notifyUrlLabel", () => {
  it("labels never hold credentials or tokens", () => {
    for (const url of ["json://u:SECRET@h/SECRET", "discord://1/SECRET", "tgram://1:SECRET/2", "gotify://h/SECRET", "smtp://u:SECRET@h?from=a@b&to=c@d", "slack://SECRET/SECRET/SECRET"])
      assert.ok(!notifyUrlLabel(url).includes("SECRET"), notifyUrlLabel(url));
  });
});
