import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { archiveFolderName, calendarPolicyOf, decideRetention } from "@vmbs/chain";
import { applyRetention } from "./apply-retention.js";
import { captureDeps, DAY, writeChain } from "../testing/chain-fixture.js";

const NOW = Date.UTC(2024, 5, 15, 12); // 2024-06-15 12:00 UTC
const name = (domain: string, t: number) => archiveFolderName(domain, t, "UTC");

describe("local retention on real folders", () => {
  let base: string;
  let n = 0;
  const freshRoot = async () => {
    const root = join(base, `root-${n++}`);
    await mkdir(root);
    return root;
  };
  before(async () => (base = await mkdtemp(join(tmpdir(), "vmbs-retention-"))));
  after(async () => rm(base, { recursive: true, force: true }));

  /** Five archives of `vm1`, one a week, plus the active chain. Returns the archive names newest first. */
  async function fiveArchives(root: string, domain = "vm1"): Promise<string[]> {
    const names: string[] = [];
    for (let w = 5; w >= 1; w--) {
      const t0 = NOW - w * 7 * DAY;
      const archive = name(domain, t0);
      await writeChain(root, archive, domain, { points: [t0, t0 + DAY, t0 + 2 * DAY] });
      names.unshift(archive);
    }
    await writeChain(root, domain, domain, { points: [NOW - DAY] });
    return names;
  }

  it("keeps exactly N archives and announces each deletion with its reason", async () => {
    const root = await freshRoot();
    const archives = await fiveArchives(root);
    const { deps, events } = captureDeps(root, NOW);
    const s = await applyRetention(deps, { domain: "vm1", keep: 2 });
    assert.deepEqual(s.kept, archives.slice(0, 2));
    assert.deepEqual(s.deleted, archives.slice(2));
    assert.deepEqual((await readdir(root)).sort(), ["vm1", ...archives.slice(0, 2)].sort());
    assert.equal(events.length, 3);
    for (const [i, e] of events.entries()) {
      assert.equal(e.type, "pruned");
      assert.equal(e.trigger, "retention");
      assert.deepEqual(e.folders, [archives[2 + i]]);
      assert.match(e.reason, /LOCAL_BACKUP_CHAINS_TO_KEEP=2/);
      assert.ok(e.reason.includes(archives[0]!), "the reason names what was kept");
    }
  });

  it("never deletes a pinned (renamed) archive, the active chain, or a file", async () => {
    const root = await freshRoot();
    const archives = await fiveArchives(root);
    const t = NOW - 100 * DAY;
    const pinned = [`${name("vm1", t)}-keep`, `${name("vm1", t)} pinned`, "vm1.old"];
    for (const p of pinned) await writeChain(root, p, "vm1", { points: [t] });
    const { deps } = captureDeps(root, NOW);
    const s = await applyRetention(deps, { domain: "vm1", keep: 1 });
    assert.deepEqual(s.deleted, archives.slice(1));
    assert.deepEqual((await readdir(root)).sort(), ["vm1", archives[0]!, ...pinned].sort());
  });

  it("an `a.b` domain never deletes `aXb.*` archives (no domain text in a regex)", async () => {
    const root = await freshRoot();
    const mine = await fiveArchives(root, "a.b");
    const theirs = await fiveArchives(root, "aXb");
    const { deps } = captureDeps(root, NOW);
    const s = await applyRetention(deps, { domain: "a.b", keep: 1 });
    assert.deepEqual(s.deleted, mine.slice(1));
    for (const t of theirs) assert.ok((await readdir(root)).includes(t), `${t} must survive`);
  });

  it("never deletes another domain's active chain that looks like an archive (libvirt name or its own .cpt)", async () => {
    const root = await freshRoot();
    const archives = await fiveArchives(root, "web");
    // Domains named like archives of `web`: one known to libvirt here, one of another host (only its .cpt tells).
    const lookAlike = "web.2020-01-01+00:00:00.0123456789";
    const otherHost = "web.2020-01-02+00:00:00.0123456789";
    await writeChain(root, lookAlike, lookAlike, { points: [NOW - 400 * DAY] });
    await writeChain(root, otherHost, otherHost, { points: [NOW - 399 * DAY] });
    const before = (await readdir(join(root, lookAlike))).length;
    const { deps } = captureDeps(root, NOW, ["web", lookAlike]);
    const s = await applyRetention(deps, { domain: "web", keep: 1 });
    assert.deepEqual(s.deleted, archives.slice(1));
    assert.deepEqual(s.archives, archives, "neither look-alike counts as an archive of web");
    assert.equal((await readdir(join(root, lookAlike))).length, before);
    assert.ok((await readdir(join(root, otherHost))).includes(`${otherHost}.cpt`));
  });

  it("an archive holding a foreign file loses only the tool's files; the rest is set aside and announced", async () => {
    const root = await freshRoot();
    const archives = await fiveArchives(root);
    const oldest = archives.at(-1)!;
    await writeFile(join(root, oldest, "notes.txt"), "my notes");
    await mkdir(join(root, oldest, "extra"));
    const { deps, events } = captureDeps(root, NOW);
    const s = await applyRetention(deps, { domain: "vm1", keep: 2 });
    assert.deepEqual(s.deleted, archives.slice(2, 4));
    assert.deepEqual(s.setAside, [{ name: oldest, to: `${oldest}.foreign-files`, kept: ["extra/", "notes.txt"] }]);
    assert.deepEqual((await readdir(join(root, `${oldest}.foreign-files`))).sort(), ["extra", "notes.txt"]);
    assert.equal(await readFile(join(root, `${oldest}.foreign-files`, "notes.txt"), "utf8"), "my notes");
    const attention = events.find((e) => e.type === "attention");
    assert.ok(attention);
    assert.match(attention.reason, /did not write \(extra\/, notes\.txt\)/);
    // Set aside, the folder is no archive any more: the next pass leaves it alone.
    const again = await applyRetention(captureDeps(root, NOW).deps, { domain: "vm1", keep: 2 });
    assert.deepEqual(again.deleted, []);
  });

  it("an archive whose folder lease is held (someone writes it) is left alone and the skip announced", async () => {
    const root = await freshRoot();
    const archives = await fiveArchives(root);
    const busy = archives.at(-1)!;
    const { deps, events } = captureDeps(root, NOW, [], [busy]);
    const s = await applyRetention(deps, { domain: "vm1", keep: 1 });
    assert.deepEqual(s.deleted, archives.slice(1, 4));
    assert.deepEqual(s.failed.map((f) => f.name), [busy]);
    assert.ok((await readdir(root)).includes(busy));
    assert.match(events.find((e) => e.type === "failed")!.reason, /lease is held/);
  });

  it("a symlinked archive is never followed or deleted", async () => {
    const root = await freshRoot();
    const archives = await fiveArchives(root);
    const target = await mkdtemp(join(base, "target-"));
    await writeFile(join(target, "vm1.cpt"), "[]");
    const linked = name("vm1", NOW - 1000 * DAY);
    await symlink(target, join(root, linked));
    const { deps } = captureDeps(root, NOW);
    const s = await applyRetention(deps, { domain: "vm1", keep: 1 });
    assert.deepEqual(s.deleted, archives.slice(1));
    assert.ok((await readdir(root)).includes(linked));
    assert.equal(await readFile(join(target, "vm1.cpt"), "utf8"), "[]");
  });

  it("keep 0 deletes nothing", async () => {
    const root = await freshRoot();
    const archives = await fiveArchives(root);
    const { deps, events } = captureDeps(root, NOW);
    const s = await applyRetention(deps, { domain: "vm1", keep: 0, calendar: { days: 1, weeks: 0, months: 0 } });
    assert.deepEqual(s.deleted, []);
    assert.deepEqual(s.kept, archives);
    assert.equal(events.length, 0);
    assert.equal((await readdir(root)).length, 6);
  });

  it("calendar retention keeps a chain whole while a kept point needs it (union with the count rule)", async () => {
    const root = await freshRoot();
    const month = (m: number) => Array.from({ length: 10 }, (_, d) => Date.UTC(2024, m, 1 + 2 * d, 3));
    const june = month(5).filter((t) => t < NOW);
    const chains = { june, may: month(4), april: month(3), january: month(0) };
    const names: Record<string, string> = {};
    for (const [k, points] of Object.entries(chains)) {
      names[k] = name("vm1", points[0]!);
      // April's chain has no checkpoint XMLs: its points come from the data files' mtimes.
      await writeChain(root, names[k]!, "vm1", { points, xml: k !== "april" });
    }
    await writeChain(root, "vm1", "vm1", { points: [NOW - 1000] });
    const before = (await readdir(join(root, names.may!))).length;

    const { deps, events } = captureDeps(root, NOW);
    const calendar = calendarPolicyOf(0, 0, 3);
    assert.ok(calendar);
    const s = await applyRetention(deps, { domain: "vm1", keep: 1, calendar });
    assert.deepEqual(s.deleted, [names.january]);
    assert.deepEqual(s.kept, [names.june, names.may, names.april]);
    assert.equal((await readdir(join(root, names.may!))).length, before, "a kept chain stays whole");
    assert.match(events[0]!.reason, /calendar retention \(days=0, weeks=0, months=3\)/);
  });

  it("decideRetention never offers an active chain, whatever its name", () => {
    const web = [name("web", 3e12), name("web", 2e12), name("web", 1e12)];
    const rows: [active: string[], deleted: string[]][] = [
      [[], web.slice(1)],
      [[web[2]!], [web[1]!]],
      [[web[0]!], [web[2]!]],
      [web, []],
    ];
    for (const [activeChains, deleted] of rows) {
      const d = decideRetention({ domain: "web", folderNames: ["web", ...web], activeChains, keep: 1, now: NOW });
      assert.deepEqual(d.delete.map((v) => v.name), deleted, `active: ${activeChains.join(", ")}`);
    }
  });

  it("without the calendar the same folders keep only the count", () => {
    const d = decideRetention({ domain: "vm1", folderNames: ["vm1", name("vm1", 1e12), name("vm1", 2e12)], activeChains: [], keep: 1, now: NOW });
    assert.equal(d.delete.length, 1);
    assert.equal(calendarPolicyOf(0, 0, 0), undefined);
  });
});
