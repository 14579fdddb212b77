import { createHash } from "node:crypto";
import { Redis } from "ioredis";
import { publishJson, readHostInventories, type NatsConnection } from "@vmbs/bus";
import { eventMessageId, subjects, type HostInventory, type NotifySilentEvent, type NotifyStaleEvent } from "@vmbs/contracts";
import type { Logger } from "@vmbs/logger";
import { redisOptions } from "./delivery-queue.js";
import { decideAlarms, domainKey } from "./stale-alarms.js";

export interface BackupWatchOptions {
  nc: NatsConnection;
  redisUrl: string;
  /** NOTIFY_STALE_HOURS in ms. */
  staleMs: number;
  /** Between checks. Default 60 s. */
  intervalMs?: number;
  logger: Logger;
}

export interface BackupWatch {
  /** Remembers a completed backup (from the events the notifier reads). */
  recordCompleted(host: string, domain: string, at: string): Promise<void>;
  /** One check now; resolves with the alarms raised. */
  check(): Promise<number>;
  stop(): Promise<void>;
}

const key = { heartbeats: "vmbs:notify:heartbeats", completed: "vmbs:notify:completed", firstSeen: "vmbs:notify:first-seen", alarmed: "vmbs:notify:alarmed" };

/**
 * Raises `vmbs.evt.notify.<host>.stale` and `.silent` — events like any other, so the notifier delivers them and
 * subscribers see them. What it has seen lives in Redis, so a restart neither forgets a domain's clock nor raises
 * an alarm twice: an alarm is raised once per episode (the same last backup, the same last heartbeat).
 */
export function createBackupWatch(o: BackupWatchOptions): BackupWatch {
  const onError = (err: unknown): void => o.logger.warn({ err }, "stale-backup check failed");
  const redis = new Redis({ ...redisOptions(o.redisUrl), maxRetriesPerRequest: 1 });
  redis.on("error", onError);

  async function inventories(): Promise<HostInventory[]> {
    const { inventories, refused } = await readHostInventories(o.nc);
    for (const { key, reason } of refused) o.logger.warn({ key, reason }, "ignoring a host entry");
    return inventories;
  }

  /** Publishes an alarm once per episode id. */
  async function raise(host: string, type: "stale" | "silent", episode: string, payload: NotifyStaleEvent | NotifySilentEvent): Promise<boolean> {
    if ((await redis.hget(key.alarmed, `${type}\0${episode}`)) !== null) return false;
    const subject = subjects.evt.notify(host, type);
    await publishJson(o.nc, subject, payload, eventMessageId(subject, createHash("sha256").update(episode).digest("hex").slice(0, 32)));
    await redis.hset(key.alarmed, `${type}\0${episode}`, payload.at);
    return true;
  }

  async function check(): Promise<number> {
    const invs = await inventories();
    const now = new Date();
    for (const inv of invs) {
      await redis.hset(key.heartbeats, inv.host, inv.heartbeatAt);
      for (const d of inv.domains) if (d.scheduled) await redis.hsetnx(key.firstSeen, domainKey(inv.host, d.name), now.toISOString());
    }
    const memory = {
      heartbeats: new Map(Object.entries(await redis.hgetall(key.heartbeats))),
      completed: new Map(Object.entries(await redis.hgetall(key.completed))),
      firstSeen: new Map(Object.entries(await redis.hgetall(key.firstSeen))),
    };
    const { stale, silent } = decideAlarms(now.getTime(), o.staleMs, invs, memory);
    let raised = 0;
    const hours = Math.round(o.staleMs / 3_600_000);
    for (const s of stale) {
      const reason = s.lastCompletedAt
        ? `no completed backup since ${s.lastCompletedAt} (more than ${hours} h)`
        : `no completed backup since the notifier first saw it scheduled at ${s.since} (more than ${hours} h)`;
      const payload: NotifyStaleEvent = { type: "stale", host: s.host, domain: s.domain, ...(s.lastCompletedAt ? { lastCompletedAt: s.lastCompletedAt } : {}), since: s.since, reason, at: now.toISOString() };
      if (await raise(s.host, "stale", `${domainKey(s.host, s.domain)}\0${s.since}`, payload)) raised++;
    }
    for (const s of silent) {
      const payload: NotifySilentEvent = { type: "silent", host: s.host, lastHeartbeatAt: s.lastHeartbeatAt, reason: `the agent stopped heart-beating (last at ${s.lastHeartbeatAt})`, at: now.toISOString() };
      if (await raise(s.host, "silent", `${s.host}\0${s.lastHeartbeatAt}`, payload)) raised++;
    }
    return raised;
  }

  // A first check at once: a restarted notifier need not wait a whole interval.
  let running: Promise<unknown> = check().catch(onError);
  const timer = setInterval(() => {
    running = check().catch(onError);
  }, o.intervalMs ?? 60_000);

  return {
    async recordCompleted(host, domain, at) {
      await redis.hset(key.completed, domainKey(host, domain), at);
    },
    check,
    async stop() {
      clearInterval(timer);
      await running;
      redis.disconnect();
    },
  };
}
