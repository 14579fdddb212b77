import type { NotifyDigestEvent } from "@vmbs/contracts";

export type DomainOutcome = NotifyDigestEvent["domains"][number];

/** Request ids of the scheduler's runs (`schedule:<slot>`): only those get a digest. */
export const isScheduledRun = (requestId: unknown): requestId is string => typeof requestId === "string" && requestId.startsWith("schedule:");

/** A run is over once every domain scheduled at its start has an outcome. */
export function isRunComplete(expected: string[], outcomes: DomainOutcome[]): boolean {
  const done = new Set(outcomes.map((o) => o.domain));
  return expected.every((d) => done.has(d));
}

/** The digest of one host's run: counts, totals, each domain's outcome (by name), what needs a person. */
export function summarizeRun(host: string, requestId: string, outcomes: DomainOutcome[], attention: NotifyDigestEvent["attention"], at: string): NotifyDigestEvent {
  const domains = [...outcomes].sort((a, b) => a.domain.localeCompare(b.domain));
  return {
    type: "digest",
    host,
    requestId,
    succeeded: domains.filter((d) => d.outcome === "completed").length,
    failed: domains.filter((d) => d.outcome === "failed").length,
    bytesWritten: domains.reduce((n, d) => n + d.bytesWritten, 0),
    durationMs: domains.reduce((n, d) => n + d.durationMs, 0),
    domains,
    attention,
    at,
  };
}
