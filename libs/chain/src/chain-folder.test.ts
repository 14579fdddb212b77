import { test } from "node:test";
import * as assert from "node:assert/strict";
import { mkdtemp, mkdir, rm, symlink, truncate, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileStampsOf, isActiveChainFolder, MAX_CPT_BYTES, readChainFolder } from "./chain-folder.js";

/** One folder layout to create, and what readChainFolder must report for it. */
interface Row {
  name: string;
  domain: string;
  /** Relative path → content; a null content creates a directory. Omit to not create the folder at all. */
  layout?: Record<string, string | null>;
  /** Relative path → symlink target, created after the layout. */
  links?: Record<string, string>;
  exists: boolean;
  paths: string[];
  cpt: string[] | null;
  cptError?: RegExp;
}

const rows: Row[] = [
  { name: "missing folder", domain: "vm1", exists: false, paths: [], cpt: null },
  { name: "empty folder", domain: "vm1", layout: {}, exists: true, paths: [], cpt: null },
  {
    name: "normal chain with nested checkpoints folder",
    domain: "vm1",
    layout: {
      "vm1.cpt": '["virtnbdbackup.0","virtnbdbackup.1"]',
      "sda.full.data": "full",
      "sda.inc.virtnbdbackup.1.data": "inc",
      "checkpoints/virtnbdbackup.0.xml": "<x/>",
      "checkpoints/virtnbdbackup.1.xml": "<x/>",
    },
    exists: true,
    paths: [
      "checkpoints/virtnbdbackup.0.xml",
      "checkpoints/virtnbdbackup.1.xml",
      "sda.full.data",
      "sda.inc.virtnbdbackup.1.data",
      "vm1.cpt",
    ],
    cpt: ["virtnbdbackup.0", "virtnbdbackup.1"],
  },
  {
    name: "domain name with spaces",
    domain: "my vm",
    layout: { "my vm.cpt": '["virtnbdbackup.0"]', "sda.full.data": "x" },
    exists: true,
    paths: ["my vm.cpt", "sda.full.data"],
    cpt: ["virtnbdbackup.0"],
  },
  {
    name: ".cpt of another domain is not read",
    domain: "vm1",
    layout: { "vm10.cpt": '["virtnbdbackup.0"]' },
    exists: true,
    paths: ["vm10.cpt"],
    cpt: null,
  },
  {
    name: "empty .cpt list",
    domain: "vm1",
    layout: { "vm1.cpt": "[]" },
    exists: true,
    paths: ["vm1.cpt"],
    cpt: [],
  },
  {
    name: ".cpt is not JSON",
    domain: "vm1",
    layout: { "vm1.cpt": "virtnbdbackup.0" },
    exists: true,
    paths: ["vm1.cpt"],
    cpt: null,
    cptError: /vm1\.cpt: not valid JSON/,
  },
  {
    name: ".cpt is a JSON object",
    domain: "vm1",
    layout: { "vm1.cpt": '{"a":1}' },
    exists: true,
    paths: ["vm1.cpt"],
    cpt: null,
    cptError: /not a JSON array/,
  },
  {
    name: ".cpt holds a number",
    domain: "vm1",
    layout: { "vm1.cpt": '["virtnbdbackup.0", 1]' },
    exists: true,
    paths: ["vm1.cpt"],
    cpt: null,
    cptError: /entry 1 is not a string/,
  },
  {
    name: "empty sub-folders contribute no files",
    domain: "vm1",
    layout: { checkpoints: null, "a/b": null, "backup.full.11262026023447.log": "log" },
    exists: true,
    paths: ["backup.full.11262026023447.log"],
    cpt: null,
  },
  {
    name: "symlinks are not regular files",
    domain: "vm1",
    layout: { "sda.full.data": "x" },
    links: { "link.data": "sda.full.data" },
    exists: true,
    paths: ["sda.full.data"],
    cpt: null,
  },
];

for (const row of rows) {
  test(`readChainFolder: ${row.name}`, async () => {
    const base = await mkdtemp(join(tmpdir(), "chain-folder-"));
    try {
      const dir = join(base, "chain");
      if (row.layout) {
        await mkdir(dir);
        for (const [rel, content] of Object.entries(row.layout)) {
          const full = join(dir, rel);
          if (content === null) {
            await mkdir(full, { recursive: true });
          } else {
            await mkdir(join(full, ".."), { recursive: true });
            await writeFile(full, content);
          }
        }
        for (const [rel, target] of Object.entries(row.links ?? {})) await symlink(target, join(dir, rel));
      }
      const folder = await readChainFolder(dir, row.domain);
      assert.equal(folder.dir, dir);
      assert.equal(folder.exists, row.exists);
      assert.deepEqual(
        folder.files.map((f) => f.path),
        row.paths,
      );
      assert.deepEqual(folder.cpt, row.cpt);
      if (row.cptError) assert.match(folder.cptError ?? "", row.cptError);
      else assert.equal(folder.cptError, undefined);
    } finally {
      await rm(base, { recursive: true, force: true });
    }
  });
}

test("readChainFolder: reports size and mtime of each file", async () => {
  const base = await mkdtemp(join(tmpdir(), "chain-folder-"));
  try {
    await writeFile(join(base, "sda.full.data"), "12345");
    const when = new Date("2024-03-01T10:00:00.250Z");
    await utimes(join(base, "sda.full.data"), when, when);
    const folder = await readChainFolder(base, "vm1");
    assert.equal(folder.files.length, 1);
    assert.equal(folder.files[0]?.size, 5);
    assert.equal(Math.round(folder.files[0]?.mtimeMs ?? 0), when.getTime());
  } finally {
    await rm(base, { recursive: true, force: true });
  }
});

test("readChainFolder: a symlinked chain folder is reported, never followed", async () => {
  const base = await mkdtemp(join(tmpdir(), "chain-folder-"));
  try {
    await mkdir(join(base, "real"));
    await writeFile(join(base, "real", "sda.full.data"), "x");
    await symlink(join(base, "real"), join(base, "vm1"));
    const folder = await readChainFolder(join(base, "vm1"), "vm1");
    assert.equal(folder.exists, true);
    assert.equal(folder.symlink, true);
    assert.deepEqual(folder.files, [], "nothing behind the link is read");
    assert.equal(folder.cpt, null);
  } finally {
    await rm(base, { recursive: true, force: true });
  }
});

test("readChainFolder: a plain file in place of the folder counts as missing", async () => {
  const base = await mkdtemp(join(tmpdir(), "chain-folder-"));
  try {
    await writeFile(join(base, "vm1"), "not a folder");
    const folder = await readChainFolder(join(base, "vm1"), "vm1");
    assert.deepEqual(folder, { dir: join(base, "vm1"), exists: false, files: [], cpt: null });
  } finally {
    await rm(base, { recursive: true, force: true });
  }
});

test("readChainFolder: a huge .cpt (sparse, 1 GiB) is reported as an error without being read", async () => {
  const base = await mkdtemp(join(tmpdir(), "chain-folder-"));
  try {
    await writeFile(join(base, "vm1.cpt"), '["virtnbdbackup.0"]');
    await truncate(join(base, "vm1.cpt"), 1024 ** 3);
    const before = process.memoryUsage().arrayBuffers;
    const folder = await readChainFolder(base, "vm1");
    assert.ok(process.memoryUsage().arrayBuffers - before < 8 * 1024 * 1024, "the file was not read into memory");
    assert.equal(folder.cpt, null);
    assert.match(folder.cptError ?? "", new RegExp(`vm1\\.cpt: 1073741824 bytes, over the ${MAX_CPT_BYTES}-byte limit`));
  } finally {
    await rm(base, { recursive: true, force: true });
  }
});

test("isActiveChainFolder: a folder X is an active chain only when X.cpt in it is a regular file", async () => {
  const base = await mkdtemp(join(tmpdir(), "vmbs-active-"));
  try {
    const cases: [name: string, make: (dir: string) => Promise<unknown>, active: boolean][] = [
      ["vm1", (d) => writeFile(join(d, "vm1.cpt"), "[]"), true],
      ["vm1.2024-01-01+00:00:00.0000000000", (d) => writeFile(join(d, "vm1.2024-01-01+00:00:00.0000000000.cpt"), "[]"), true],
      ["web", (d) => writeFile(join(d, "vm1.cpt"), "[]"), false],
      ["dir", (d) => mkdir(join(d, "dir.cpt")), false],
      ["link", (d) => symlink(join(base, "vm1", "vm1.cpt"), join(d, "link.cpt")), false],
      ["empty", async () => undefined, false],
    ];
    for (const [name, make] of cases) {
      await mkdir(join(base, name));
      await make(join(base, name));
    }
    for (const [name, , active] of cases) assert.equal(await isActiveChainFolder(base, name), active, name);
    assert.equal(await isActiveChainFolder(base, "absent"), false);
  } finally {
    await rm(base, { recursive: true, force: true });
  }
});

test("fileStampsOf: every file with its size and mtime in whole seconds; undefined for an absent folder", () => {
  const files = [{ path: "vda.full.data", size: 10, mtimeMs: 1_700_000_000_999.5 }, { path: "checkpoints/virtnbdbackup.0.xml", size: 3, mtimeMs: 5 }];
  assert.deepEqual([...fileStampsOf({ dir: "/b/vm1", exists: true, files, cpt: null })!], [["vda.full.data", { size: 10, mtimeS: 1_700_000_000 }], ["checkpoints/virtnbdbackup.0.xml", { size: 3, mtimeS: 0 }]]);
  assert.equal(fileStampsOf({ dir: "/b/vm1", exists: false, files: [], cpt: null }), undefined);
});
