import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { loadConfig } from "./load-config.js";
import { parseDomainPolicies, policyFor, PolicyFileError, NO_DOMAIN_POLICIES } from "./domain-policy.js";

const example = `
domains:
  - match: "db*"
    schedule: "*/30 * * * *"
    maxBackupsPerChain: 48
    chainsToKeep: 2
    mirrorChainsToKeep: 4
    rpoMinutes: 90
    excludeDisks: [vdb]
    mirror: false
    hooks:
      pre:  {argv: ["/usr/local/bin/quiesce", "db"], timeoutSeconds: 60, onFailure: fail}
      post: {argv: ["/usr/local/bin/resume"], timeoutSeconds: 60}
  - match: "web-[0-9]"
    chainsToKeep: {daily: 7, weekly: 4, monthly: 6}
  - match: "db-main"
    maxBackupsPerChain: 5
`;

describe("per-domain policy: parsing", () => {
  it("reads the documented example, defaults filled in", () => {
    const p = parseDomainPolicies(example, "policy.yaml");
    assert.equal(p.domains.length, 3);
    assert.deepEqual(p.domains[0]!.hooks?.post, { argv: ["/usr/local/bin/resume"], timeoutSeconds: 60, onFailure: "fail" });
    assert.deepEqual(p.domains[1]!.chainsToKeep, { daily: 7, weekly: 4, monthly: 6 });
  });

  it("reads JSON too, and an empty file as no policy", () => {
    assert.deepEqual(parseDomainPolicies('{"domains":[{"match":"a","mirror":false}]}', "p.json").domains, [{ match: "a", mirror: false }]);
    assert.deepEqual(parseDomainPolicies("", "p.yaml"), NO_DOMAIN_POLICIES);
  });

  const refusals: Array<[string, string, RegExp[]]> = [
    ["not YAML", "domains: [\n  - match: a\n  oops", [/not valid YAML/]],
    ["an unknown top-level key", "domain: []", [/the file|domain/]],
    ["an unknown field, named with its entry", 'domains:\n  - match: "db*"\n    schedul: "@daily"', [/domains\[0\] \(match "db\*"\)/, /schedul/]],
    ["a bad cron", "domains:\n  - match: a\n    schedule: every day", [/domains\[0\] \(match "a"\) schedule: expected a cron expression/]],
    ["a hook given as a shell string", 'domains:\n  - match: a\n    hooks: {pre: "quiesce db"}', [/domains\[0\] \(match "a"\) hooks\.pre/]],
    ["a hook without a program", "domains:\n  - match: a\n    hooks: {pre: {argv: []}}", [/argv needs at least the program/]],
    ["a calendar keeping nothing", "domains:\n  - match: a\n    chainsToKeep: {daily: 0}", [/keeps nothing/]],
    ["a disk target that is a path", "domains:\n  - match: a\n    excludeDisks: [../vdb]", [/excludeDisks\.0: expected a disk target/]],
    ["an entry without match", "domains:\n  - mirror: false", [/domains\[0\] match/]],
  ];
  for (const [name, text, patterns] of refusals) {
    it(`refuses ${name} with a line that says where`, () => {
      assert.throws(() => parseDomainPolicies(text, "/etc/vmbs/policy.yaml"), (err: unknown) => {
        assert.ok(err instanceof PolicyFileError, String(err));
        assert.match(err.message, /^\/etc\/vmbs\/policy\.yaml: /);
        for (const p of patterns) assert.match(err.message, p);
        return true;
      });
    });
  }

  it("names every bad entry at once, one line each", () => {
    const text = "domains:\n  - match: a\n    rpoMinutes: 0\n  - match: b\n    maxBackupsPerChain: -1";
    assert.throws(() => parseDomainPolicies(text, "p.yaml"), (err: unknown) => {
      assert.ok(err instanceof PolicyFileError);
      assert.equal(err.problems.length, 2);
      assert.match(err.problems[0]!, /^domains\[0\] \(match "a"\) rpoMinutes/);
      assert.match(err.problems[1]!, /^domains\[1\] \(match "b"\) maxBackupsPerChain/);
      return true;
    });
  });
});

describe("per-domain policy: what applies to a domain", () => {
  const env = loadConfig({ BACKUP_SCHEDULE: "0 3 * * *", MAX_BACKUPS_PER_CHAIN: "30", LOCAL_BACKUP_CHAINS_TO_KEEP: "1", RSYNC_BACKUP_PATH: "/mnt/mirror", BACKUP_RPO_MINUTES: "1560" });
  const policies = parseDomainPolicies(example, "policy.yaml");

  const cases: Array<[string, string, Partial<ReturnType<typeof policyFor>>]> = [
    ["an exact name of no entry: all from the environment", "mail", { matchedBy: undefined, schedule: "0 3 * * *", maxBackupsPerChain: 30, chainsToKeep: 1, calendar: undefined, mirrorChainsToKeep: 2, rpoMinutes: 1560, excludeDisks: [], mirror: true }],
    ["a glob entry: its fields, the rest from the environment", "db1", { matchedBy: "db*", schedule: "*/30 * * * *", maxBackupsPerChain: 48, chainsToKeep: 2, mirrorChainsToKeep: 4, rpoMinutes: 90, excludeDisks: ["vdb"], mirror: false }],
    ["the first match wins over a later exact name", "db-main", { matchedBy: "db*", maxBackupsPerChain: 48 }],
    ["a calendar replaces LOCAL_RETENTION_*, the count stays the floor", "web-3", { matchedBy: "web-[0-9]", chainsToKeep: 1, calendar: { days: 7, weeks: 4, months: 6 }, schedule: "0 3 * * *" }],
    ["a glob is whole-name: web-10 is not web-[0-9]", "web-10", { matchedBy: undefined }],
    ["a name with a dot is matched literally by *", "db.old", { matchedBy: "db*" }],
  ];
  for (const [name, domain, expected] of cases) {
    it(name, () => {
      const got = policyFor(policies, env, domain);
      for (const [k, v] of Object.entries(expected)) assert.deepEqual(got[k as keyof typeof got], v, `${domain}: ${k}`);
    });
  }

  it("hooks come from the entry only", () => {
    assert.deepEqual(policyFor(policies, env, "db1").hooks.pre?.argv, ["/usr/local/bin/quiesce", "db"]);
    assert.deepEqual(policyFor(policies, env, "mail").hooks, {});
  });

  it("no mirror configured: mirror is off whatever an entry says", () => {
    const noMirror = loadConfig({});
    assert.equal(policyFor(parseDomainPolicies("domains:\n  - match: a\n    mirror: true", "p"), noMirror, "a").mirror, false);
  });

  it("no file: every domain gets the environment's policy", () => {
    assert.equal(policyFor(NO_DOMAIN_POLICIES, env, "db1").maxBackupsPerChain, 30);
  });
});
