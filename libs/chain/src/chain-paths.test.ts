import { test } from "node:test";
import assert from "node:assert/strict";
import { chainFolderPath, UnsafeDomainPathError } from "./chain-paths.js";

const rows: [domain: string, folder: string | null][] = [
  ["vm1", "/b/vm1"],
  ["win 11", "/b/win 11"],
  ["a.b", "/b/a.b"],
  // Reserved names in the root: its marker and the drills' scratch space.
  [".vm-babysitter-root", null],
  [".vmbs-drill", null],
  ["..", null],
  ["a/b", null],
  ["", null],
];
for (const [domain, folder] of rows)
  test(`chainFolderPath("/b", ${JSON.stringify(domain)})`, () => {
    if (folder === null) assert.throws(() => chainFolderPath("/b", domain), UnsafeDomainPathError);
    else assert.equal(chainFolderPath("/b", domain), folder);
  });
