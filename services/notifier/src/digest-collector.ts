import { createHmac, randomBytes } from "node:crypto";
import type { Redis } from "ioredis";
import { publishJson, readHostInventory, type NatsConnection } from "@vmbs/bus";
import { eventMessageId, subjects } from "@vmbs/contracts";
import type { Logger } from "@vmbs/logger";
import { isRunComplete, isScheduledRun, summarizeRun, type DomainOutcome } from "./run-digest.js";
import type { Notification } from "./render-event.js";

const keepSeconds = 7 * 24 * 3600;
const digestIdKeyName = "vmbs:notify:digest-id-key";

export interface DigestCollector {
  /** Takes note of an event of a scheduled run; publishes the run's digest once its last domain is done. */
  observe(n: Notification, event: Record<string, unknown>): Promise<void>;
}

/**
 * Collects each scheduled run's outcomes per host in Redis (so a restart mid-run forgets nothing) and publishes
 * `vmbs.evt.notify.<host>.digest` once every domain the host had scheduled when the run began has an outcome.
 * The digest's message id is derived from (host, run): it is published once, and delivered like any event. Every
 * agent knows the run (the slot's requestId), and VMBS_EVT drops a repeated id whatever its subject: the id is keyed
 * with a secret kept in Redis (the notifier's own), so no other role can use it first and have the digest dropped.
 */
export function createDigestCollector(nc: NatsConnection, redis: Redis, logger: Logger): DigestCollector {
  async function scheduledDomains(host: string): Promise<string[] | undefined> {
    const entry = await readHostInventory(nc, host);
    if (entry && !entry.ok) logger.warn({ key: host, reason: entry.reason }, "ignoring a host entry");
    return entry?.ok ? entry.value.domains.filter((d) => d.scheduled).map((d) => d.name) : undefined;
  }

  /** The secret, made on the first digest and kept (a restart keeps it, so a republished digest keeps its id). */
  async function digestIdKey(): Promise<string> {
    await redis.set(digestIdKeyName, randomBytes(32).toString("hex"), "NX");
    const key = await redis.get(digestIdKeyName);
    if (!key) throw new Error(`Redis lost ${digestIdKeyName} just after setting it`);
    return key;
  }

  return {
    async observe(n, event) {
      if (!isScheduledRun(event.requestId)) return;
      const base = `vmbs:notify:run:${n.host}:${event.requestId}`;
      if (n.service === "chain" && n.type === "attention") {
        await redis.rpush(`${base}:attention`, JSON.stringify({ ...(n.domain ? { domain: n.domain } : {}), reason: String(event.reason ?? "") }));
        await redis.expire(`${base}:attention`, keepSeconds);
        return;
      }
      if (n.service !== "backup" || (n.type !== "completed" && n.type !== "failed") || !n.domain) return;
      if ((await redis.exists(`${base}:expected`)) === 0) {
        // The host's scheduled domains when the run is first heard of; without an inventory, what reports in.
        const expected = (await scheduledDomains(n.host)) ?? [n.domain];
        await redis.set(`${base}:expected`, JSON.stringify(expected), "EX", keepSeconds, "NX");
      }
      const outcome: DomainOutcome = {
        domain: n.domain,
        outcome: n.type,
        bytesWritten: Number(event.bytesWritten ?? 0),
        durationMs: Number(event.durationMs ?? 0),
        ...(n.type === "failed" && typeof event.reason === "string" ? { reason: event.reason } : {}),
      };
      await redis.hset(`${base}:outcomes`, n.domain, JSON.stringify(outcome));
      await redis.expire(`${base}:outcomes`, keepSeconds);
      const expected = JSON.parse((await redis.get(`${base}:expected`)) ?? "[]") as string[];
      const outcomes = Object.values(await redis.hgetall(`${base}:outcomes`)).map((v) => JSON.parse(v) as DomainOutcome);
      if (!isRunComplete(expected, outcomes) || (await redis.exists(`${base}:done`)) === 1) return;
      const attention = (await redis.lrange(`${base}:attention`, 0, -1)).map((v) => JSON.parse(v) as { domain?: string; reason: string });
      const digest = summarizeRun(n.host, event.requestId, outcomes, attention, new Date().toISOString());
      const subject = subjects.evt.notify(n.host, "digest");
      // Marked done only once published; a crash in between publishes the same id again, which the stream drops.
      await publishJson(nc, subject, digest, eventMessageId(subject, createHmac("sha256", await digestIdKey()).update(base).digest("hex").slice(0, 32)));
      await redis.set(`${base}:done`, digest.at, "EX", keepSeconds);
    },
  };
}
