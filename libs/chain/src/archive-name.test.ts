import { test } from "node:test";
import * as assert from "node:assert/strict";
import { archiveDomainOf, archiveFolderName, parseArchiveFolderName, uniqueArchiveName } from "./archive-name.js";

const T = 1699424376150; // 2023-11-08T06:19:36.150Z

const nameRows: { name: string; domain: string; ms: number; zone?: string; ns?: bigint; expected: string }[] = [
  { name: "UTC, ms precision", domain: "vm1", ms: T, zone: "UTC", expected: "vm1.2023-11-08+06:19:36.1500000000" },
  { name: "Berlin is UTC+1 in November", domain: "vm1", ms: T, zone: "Europe/Berlin", expected: "vm1.2023-11-08+07:19:36.1500000000" },
  { name: "Berlin is UTC+2 in summer", domain: "vm1", ms: Date.UTC(2024, 6, 1, 22, 0, 5), zone: "Europe/Berlin", expected: "vm1.2024-07-02+00:00:05.0000000000" },
  {
    name: "nanosecond mtime fills 9 digits, like find's %T+",
    domain: "vm1",
    ms: T,
    zone: "UTC",
    ns: 1699424376150194915n,
    expected: "vm1.2023-11-08+06:19:36.1501949150",
  },
  { name: "sub-millisecond part of a float mtime is dropped", domain: "vm1", ms: T + 0.9, zone: "UTC", expected: "vm1.2023-11-08+06:19:36.1500000000" },
  { name: "whole second gives ten zeros", domain: "vm1", ms: 1704067200000, zone: "UTC", expected: "vm1.2024-01-01+00:00:00.0000000000" },
  { name: "before 1970 floors to the earlier second", domain: "vm1", ms: -1, zone: "UTC", expected: "vm1.1969-12-31+23:59:59.9990000000" },
  { name: "domain with spaces and dots is kept verbatim", domain: "my vm.prod", ms: T, zone: "UTC", expected: "my vm.prod.2023-11-08+06:19:36.1500000000" },
];

for (const row of nameRows) {
  test(`archiveFolderName: ${row.name}`, () => {
    const name = archiveFolderName(row.domain, row.ms, row.zone, row.ns);
    assert.equal(name, row.expected);
    assert.deepEqual(parseArchiveFolderName(row.domain, name), { timestamp: name.slice(row.domain.length + 1) });
  });
}

const badRows: { name: string; domain: string; ms: number; zone?: string }[] = [
  { name: "empty domain", domain: "", ms: T },
  { name: "domain with a slash", domain: "a/b", ms: T },
  { name: "NaN mtime", domain: "vm1", ms: Number.NaN },
  { name: "unknown zone", domain: "vm1", ms: T, zone: "Mars/Olympus" },
];

for (const row of badRows) {
  test(`archiveFolderName rejects: ${row.name}`, () => {
    assert.throws(() => archiveFolderName(row.domain, row.ms, row.zone), RangeError);
  });
}

const parseRows: { name: string; domain: string; folder: string; timestamp: string | null }[] = [
  { name: "exact archive", domain: "vm1", folder: "vm1.2023-11-08+06:19:36.1501949150", timestamp: "2023-11-08+06:19:36.1501949150" },
  { name: "active chain folder", domain: "vm1", folder: "vm1", timestamp: null },
  { name: "dot in domain is not a wildcard", domain: "a.b", folder: "aXb.2023-11-08+06:19:36.1501949150", timestamp: null },
  { name: "dotted domain matches itself", domain: "a.b", folder: "a.b.2023-11-08+06:19:36.1501949150", timestamp: "2023-11-08+06:19:36.1501949150" },
  { name: "archive of a longer domain name", domain: "vm", folder: "vm1.2023-11-08+06:19:36.1501949150", timestamp: null },
  { name: "archive of a dotted domain sharing the prefix", domain: "vm", folder: "vm.x.2023-11-08+06:19:36.1501949150", timestamp: null },
  { name: "regex characters in the domain", domain: "v(m)+", folder: "v(m)+.2023-11-08+06:19:36.1501949150", timestamp: "2023-11-08+06:19:36.1501949150" },
  { name: "pinned by suffix", domain: "vm1", folder: "vm1.2023-11-08+06:19:36.1501949150-keep", timestamp: null },
  { name: "seed-style -2 suffix counts as pinned", domain: "vm1", folder: "vm1.2023-11-08+06:19:36.1501949150-2", timestamp: null },
  { name: "nine fraction digits", domain: "vm1", folder: "vm1.2023-11-08+06:19:36.150194915", timestamp: null },
  { name: "seed README's wrong layout", domain: "vm1", folder: "vm1.2023-11-08.06:19:36.1501949150", timestamp: null },
  { name: "empty domain", domain: "", folder: ".2023-11-08+06:19:36.1501949150", timestamp: null },
];

for (const row of parseRows) {
  test(`parseArchiveFolderName: ${row.name}`, () => {
    const parsed = parseArchiveFolderName(row.domain, row.folder);
    assert.deepEqual(parsed, row.timestamp === null ? null : { timestamp: row.timestamp });
  });
}

const domainRows: [folder: string, domain: string | null][] = [
  ["vm1.2023-11-08+06:19:36.1501949150", "vm1"],
  ["a.b.2023-11-08+06:19:36.1501949150", "a.b"],
  ["web server.2023-11-08+06:19:36.1501949150", "web server"],
  ["vm1", null],
  ["vm1.2023-11-08+06:19:36.1501949150-keep", null],
  ["vm1.2023-11-08+06:19:36.1501949150.foreign-files", null],
  [".2023-11-08+06:19:36.1501949150", null],
  [".vmbs-drill", null],
];

for (const [folder, domain] of domainRows) {
  test(`archiveDomainOf(${JSON.stringify(folder)}) = ${JSON.stringify(domain)}`, () => {
    assert.equal(archiveDomainOf(folder), domain);
  });
}

const A = "vm1.2023-11-08+06:19:36.1500000000";
const uniqueRows: { name: string; wanted: string; taken: string[]; expected: string; stillArchive: boolean }[] = [
  { name: "free name is returned as is", wanted: A, taken: ["vm1"], expected: A, stillArchive: true },
  { name: "taken archive name bumps the last fraction digit", wanted: A, taken: [A], expected: "vm1.2023-11-08+06:19:36.1500000001", stillArchive: true },
  {
    name: "bumps past every taken variant",
    wanted: A,
    taken: [A, "vm1.2023-11-08+06:19:36.1500000001", "vm1.2023-11-08+06:19:36.1500000002"],
    expected: "vm1.2023-11-08+06:19:36.1500000003",
    stillArchive: true,
  },
  {
    name: "fraction at its maximum falls back to a suffix (pinned)",
    wanted: "vm1.2023-11-08+06:19:36.9999999999",
    taken: ["vm1.2023-11-08+06:19:36.9999999999"],
    expected: "vm1.2023-11-08+06:19:36.9999999999-2",
    stillArchive: false,
  },
  { name: "non-archive name gets -2", wanted: "vm1-old", taken: ["vm1-old"], expected: "vm1-old-2", stillArchive: false },
  { name: "non-archive name skips taken suffixes", wanted: "x", taken: ["x", "x-2"], expected: "x-3", stillArchive: false },
];

for (const row of uniqueRows) {
  test(`uniqueArchiveName: ${row.name}`, () => {
    const got = uniqueArchiveName(row.wanted, new Set(row.taken));
    assert.equal(got, row.expected);
    assert.equal(parseArchiveFolderName("vm1", got) !== null, row.stillArchive);
  });
}
