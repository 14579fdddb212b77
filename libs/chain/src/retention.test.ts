import { test } from "node:test";
import * as assert from "node:assert/strict";
import { selectArchivesToDelete, selectCalendarRetention, type CalendarPolicy, type ChainPoints } from "./retention.js";

const a = (stamp: string, domain = "vm1") => `${domain}.${stamp}.0000000000`;
const JAN = a("2024-01-01+00:00:00");
const FEB = a("2024-02-01+00:00:00");
const MAR = a("2024-03-01+00:00:00");
const APR = a("2024-04-01+00:00:00");

const countRows: { name: string; domain?: string; folders: string[]; keep: number; expected: string[] }[] = [
  { name: "keep 1 of 3 deletes the two oldest", folders: [FEB, JAN, MAR], keep: 1, expected: [FEB, JAN] },
  { name: "keep 2 of 4", folders: [JAN, APR, MAR, FEB], keep: 2, expected: [FEB, JAN] },
  { name: "keep 0 means keep all", folders: [JAN, FEB, MAR], keep: 0, expected: [] },
  { name: "keep more than exist", folders: [JAN, FEB], keep: 5, expected: [] },
  { name: "active chain folder is never selected", folders: ["vm1", JAN, FEB], keep: 1, expected: [JAN] },
  { name: "pinned (renamed/suffixed) folders are never selected", folders: [`${JAN}-keep`, `${FEB}-2`, "vm1-pinned", JAN, MAR], keep: 1, expected: [JAN] },
  { name: "other domains' archives are ignored", folders: [a("2024-01-01+00:00:00", "vm10"), a("2024-01-01+00:00:00", "vm"), JAN, FEB], keep: 1, expected: [JAN] },
  {
    name: "dotted domain does not match a lookalike",
    domain: "a.b",
    folders: [a("2024-01-01+00:00:00", "aXb"), a("2024-02-01+00:00:00", "a.b"), a("2024-03-01+00:00:00", "a.b")],
    keep: 1,
    expected: [a("2024-02-01+00:00:00", "a.b")],
  },
  { name: "duplicate listing counted once", folders: [JAN, JAN, FEB], keep: 1, expected: [JAN] },
];

for (const row of countRows) {
  test(`selectArchivesToDelete: ${row.name}`, () => {
    assert.deepEqual(selectArchivesToDelete(row.domain ?? "vm1", row.folders, row.keep), row.expected);
  });
}

for (const keep of [-1, 1.5, Number.NaN]) {
  test(`selectArchivesToDelete rejects keep=${keep}`, () => {
    assert.throws(() => selectArchivesToDelete("vm1", [JAN], keep), RangeError);
  });
}

const H = 3_600_000;
const D = 24 * H;
/** Wednesday 2024-05-15 12:00 UTC. */
const NOW = Date.UTC(2024, 4, 15, 12);

const calendarRows: { name: string; chains: ChainPoints[]; policy: CalendarPolicy; zone?: string; expected: string[] }[] = [
  {
    name: "daily: chains touching the last 3 days are kept",
    chains: [
      { name: "c1", points: [NOW - 10 * D, NOW - 9 * D] },
      { name: "c2", points: [NOW - 4 * D, NOW - 3 * D] },
      { name: "c3", points: [NOW - 2 * D, NOW - 1 * D] },
    ],
    policy: { days: 3, weeks: 0, months: 0 },
    expected: ["c3"],
  },
  {
    name: "daily window includes today and the day before yesterday",
    chains: [
      { name: "old", points: [NOW - 2 * D - 13 * H] }, // 2024-05-12 23:00, outside
      { name: "edge", points: [NOW - 2 * D - 11 * H] }, // 2024-05-13 01:00, inside
    ],
    policy: { days: 3, weeks: 0, months: 0 },
    expected: ["edge"],
  },
  {
    name: "only the newest point of a day needs its chain",
    chains: [
      { name: "morning", points: [NOW - 4 * H] },
      { name: "noon", points: [NOW - 1 * H] },
    ],
    policy: { days: 1, weeks: 0, months: 0 },
    expected: ["noon"],
  },
  {
    name: "weekly: Monday-based weeks, newest point per week",
    chains: [
      { name: "prev-week-mon", points: [Date.UTC(2024, 4, 6, 8)] },
      { name: "prev-week-sun", points: [Date.UTC(2024, 4, 12, 8)] },
      { name: "this-week", points: [Date.UTC(2024, 4, 13, 8)] },
      { name: "three-weeks-ago", points: [Date.UTC(2024, 3, 25, 8)] },
    ],
    policy: { days: 0, weeks: 2, months: 0 },
    expected: ["prev-week-sun", "this-week"],
  },
  {
    name: "monthly: newest point of each of the last 3 months",
    chains: [
      { name: "feb", points: [Date.UTC(2024, 1, 20)] },
      { name: "mar-early", points: [Date.UTC(2024, 2, 2)] },
      { name: "mar-late", points: [Date.UTC(2024, 2, 28)] },
      { name: "apr", points: [Date.UTC(2024, 3, 10)] },
    ],
    policy: { days: 0, weeks: 0, months: 3 },
    expected: ["mar-late", "apr"],
  },
  {
    name: "tiers combine",
    chains: [
      { name: "jan", points: [Date.UTC(2024, 0, 15)] },
      { name: "apr", points: [Date.UTC(2024, 3, 15)] },
      { name: "yesterday", points: [NOW - D] },
    ],
    policy: { days: 2, weeks: 0, months: 2 },
    expected: ["apr", "yesterday"],
  },
  {
    name: "a chain with one wanted point is kept whole",
    chains: [{ name: "long", points: [NOW - 40 * D, NOW - 20 * D, NOW - 1 * H] }],
    policy: { days: 1, weeks: 0, months: 0 },
    expected: ["long"],
  },
  {
    name: "future point (clock skew) keeps its chain",
    chains: [
      { name: "skewed", points: [NOW + D] },
      { name: "old", points: [NOW - 100 * D] },
    ],
    policy: { days: 1, weeks: 0, months: 0 },
    expected: ["skewed"],
  },
  {
    name: "chain without points is not kept",
    chains: [{ name: "empty", points: [] }],
    policy: { days: 7, weeks: 4, months: 12 },
    expected: [],
  },
  {
    name: "local zone decides the day (23:30 UTC is next day in Berlin)",
    chains: [
      { name: "late-utc", points: [Date.UTC(2024, 4, 14, 23, 30)] },
      { name: "earlier", points: [Date.UTC(2024, 4, 14, 20)] },
    ],
    policy: { days: 2, weeks: 0, months: 0 },
    zone: "Europe/Berlin",
    expected: ["late-utc", "earlier"],
  },
];

for (const row of calendarRows) {
  test(`selectCalendarRetention: ${row.name}`, () => {
    assert.deepEqual(selectCalendarRetention(row.chains, row.policy, NOW, row.zone ?? "UTC"), row.expected);
  });
}

const badPolicies: { name: string; policy: CalendarPolicy }[] = [
  { name: "all tiers zero", policy: { days: 0, weeks: 0, months: 0 } },
  { name: "negative days", policy: { days: -1, weeks: 1, months: 0 } },
  { name: "fractional weeks", policy: { days: 0, weeks: 1.5, months: 0 } },
];

for (const row of badPolicies) {
  test(`selectCalendarRetention rejects: ${row.name}`, () => {
    assert.throws(() => selectCalendarRetention([], row.policy, NOW, "UTC"), RangeError);
  });
}
