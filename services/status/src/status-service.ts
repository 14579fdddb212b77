import { createHmac } from "node:crypto";
import { Svcm, type ServiceMsg } from "@nats-io/services";
import { consumeDurable, isRedirectedStoredMessage, publishJson, readHostInventories, statusDurable, type NatsConnection } from "@vmbs/bus";
import {
  domainHistoryRequestSchema,
  errorReplyStatus,
  eventMessageId,
  fleetStatusRequestSchema,
  parseEvent,
  parsePayload,
  splitEventSubject,
  statusEndpointMetadata,
  statusServiceName,
  subjects,
  VmbsError,
  type DomainHistory,
  type FleetStatus,
  type FleetStatusRequest,
  type StatusEndpoint,
} from "@vmbs/contracts";
import type { Logger } from "@vmbs/logger";
import { decideFleetAlarms, type FleetAlarm } from "./fleet-alarms.js";
import { createFleetMetrics } from "./fleet-metrics.js";
import { startHttpListener, type HttpListener } from "./http-listener.js";
import type { FleetPolicy } from "./fleet-policy.js";
import { observeInventory } from "./fleet-records.js";
import { fleetStatus } from "./fleet-view.js";
import { createFleetViewCache } from "./fleet-view-cache.js";
import { foldEvent } from "./fold-event.js";
import { openStatusStore } from "./status-store.js";

export interface StatusServiceDeps {
  /** Connected with the status role's credentials. */
  nc: NatsConnection;
  policy: FleetPolicy;
  logger: Logger;
  /** Between alarm decisions (silent, back, stale). Default 10 s. */
  pollMs?: number;
  /** Between reads of the heartbeats written since the last read. Default 0.5 s (at most pollMs). */
  heartbeatReadMs?: number;
  /** VMBS_HTTP_LISTEN: the status page and /metrics; null = none. */
  listen: { host: string; port: number } | null;
}

export interface StatusService {
  /** The fleet now, as `vmbs.svc.status.fleet` answers it. */
  fleet(filter?: FleetStatusRequest): FleetStatus;
  /** One domain's recent runs. */
  history(host: string, domain: string): DomainHistory;
  /** The status page and /metrics, when VMBS_HTTP_LISTEN is set. */
  httpUrl: string | undefined;
  stop(): Promise<void>;
}

/** Room kept in a reply for its headers (the micro service's, and a tracing proxy's). */
const replyHeadroomBytes = 8 * 1024;

/** Version reported by `nats micro info` (semver, as ADR-32 requires). */
const serviceVersion = "0.1.0";

/** A request that does not parse: answered 400 with the reason. */
class StatusRequestError extends VmbsError {
  constructor(reason: string) {
    super("refused", reason);
  }
}

/**
 * The fleet's status service: folds every event (its durable on VMBS_EVT) and every host's heartbeat into one
 * model kept in the `vmbs_status` bucket, raises `vmbs.evt.fleet.<host>.silent|back|stale` once per episode, and
 * answers `vmbs.svc.status.fleet` / `.history` (NATS micro service `vmbs-status`).
 */
export async function startStatusService(deps: StatusServiceDeps): Promise<StatusService> {
  const { nc, policy } = deps;
  const logger = deps.logger.child({ service: "status" });
  const store = await openStatusStore(nc);
  const { fleet, skipped } = await store.load();
  const alarmIdKey = await store.alarmIdKey();
  if (skipped > 0) logger.warn({ skipped }, "status records that could not be read were skipped");
  const metrics = createFleetMetrics(fleet, policy);
  // Every change to a record below is followed, before any await, by invalidating its host's cached reply text.
  const views = createFleetViewCache(fleet, policy);

  /**
   * Publishes an alarm; its message id is the episode's, so the stream keeps one even if it is raised again. The
   * episode (a heartbeat's time, a domain's) is known to other roles: the id is keyed with the service's secret.
   */
  async function raise(alarm: FleetAlarm): Promise<void> {
    const subject = subjects.evt.fleet(alarm.host, alarm.type);
    const episode = alarm.type === "silent" ? alarm.lastHeartbeatAt : alarm.type === "back" ? alarm.silentSince : `${alarm.domain}\0${alarm.since}`;
    await publishJson(nc, subject, alarm, eventMessageId(subject, createHmac("sha256", alarmIdKey).update(episode).digest("hex").slice(0, 32)));
    logger.warn({ alarm }, `fleet alarm: ${alarm.type}`);
  }

  /** The hosts bucket's last revision read, and when it was last read whole. */
  let heartbeatsRead = 0;
  let readWholeAt = -Infinity;
  /**
   * Takes in the heartbeats written since the last read: an agent that just started shows alive within
   * heartbeatReadMs, not only at the next alarm decision. The whole bucket is read again once a minute (a bucket
   * made anew starts its revisions over).
   */
  async function readHeartbeats(): Promise<void> {
    if (Date.now() - readWholeAt >= 60_000) [heartbeatsRead, readWholeAt] = [0, Date.now()];
    const { inventories, refused, lastRevision } = await readHostInventories(nc, heartbeatsRead);
    heartbeatsRead = lastRevision;
    for (const { key, reason } of refused) logger.warn({ key, reason }, "ignoring a host entry");
    const now = new Date().toISOString();
    for (const inventory of inventories) {
      const changed = observeInventory(fleet, inventory, now);
      if (changed.host || changed.domains.length > 0) views.invalidate(inventory.host);
      if (changed.host) await store.saveHost(changed.host);
      for (const d of changed.domains) await store.saveDomain(d);
    }
  }

  /** The alarms the fleet calls for now. */
  async function decideAlarms(): Promise<void> {
    const now = new Date();
    const decision = decideFleetAlarms(fleet, now, policy);
    for (const r of [...decision.hosts, ...decision.domains]) views.invalidate(r.host);
    // Published before it is remembered: a crash in between raises it again, and the message id drops the repeat.
    for (const alarm of decision.alarms) await raise(alarm);
    for (const h of decision.hosts) await store.saveHost(h);
    for (const d of decision.domains) await store.saveDomain(d);
  }

  const pollMs = deps.pollMs ?? 10_000;
  let decidedAt = -Infinity;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let polling: Promise<void> = Promise.resolve();
  // One read at a time: the next is timed from the end of the last.
  const poll = (): void => {
    polling = (async () => {
      await readHeartbeats();
      if (Date.now() - decidedAt < pollMs) return;
      decidedAt = Date.now();
      await decideAlarms();
    })()
      .catch((err: unknown) => logger.warn({ err }, "reading the heartbeats failed"))
      .then(() => {
        if (!stopped) timer = setTimeout(poll, Math.min(deps.heartbeatReadMs ?? 500, pollMs));
      });
  };
  poll();
  const stopPolling = async (): Promise<void> => {
    stopped = true;
    clearTimeout(timer);
    await polling;
  };

  const consumer = await consumeDurable(nc, {
    ...statusDurable,
    onError: (err, msg) => logger.warn({ err, subject: msg?.subject }, "event not taken yet, retrying"),
    handler: async (msg) => {
      const parsed = parseEvent(msg.subject, msg.data);
      if (!parsed.ok) {
        logger.warn({ subject: msg.subject, reason: parsed.reason }, "event refused by its contract; dropped");
        return "term";
      }
      const service = splitEventSubject(msg.subject)!.service;
      const event = parsed.value;
      const changed = foldEvent(fleet, { service, event, seq: msg.seq });
      for (const record of changed) views.invalidate(record.host);
      for (const record of changed) await store.saveDomain(record);
      if (changed.length > 0 && service === "backup" && event.type === "completed") metrics.observeRun(event.host, String(event.level), Number(event.durationMs));
      return "ack";
    },
  });

  const api = {
    fleet: (filter: FleetStatusRequest = {}): FleetStatus => fleetStatus(fleet, new Date(), policy, filter),
    history: (host: string, domain: string): DomainHistory => ({ host, domain, runs: fleet.domains.get(host)?.get(domain)?.runs ?? [] }),
  };
  /** Each endpoint's reply, as JSON text (or its UTF-8 bytes). */
  const handlers: Record<StatusEndpoint, (msg: ServiceMsg) => string | Uint8Array> = {
    fleet(msg) {
      const req = parsePayload(fleetStatusRequestSchema, msg.data.length > 0 ? msg.data : "{}");
      if (!req.ok) throw new StatusRequestError(req.reason);
      // One reply is one message: a fleet bigger than the server's max_payload is answered in parts (`next`).
      return views.reply(new Date(), req.value, (nc.info?.max_payload ?? 1024 * 1024) - replyHeadroomBytes);
    },
    history(msg) {
      const req = parsePayload(domainHistoryRequestSchema, msg.data);
      if (!req.ok) throw new StatusRequestError(req.reason);
      return JSON.stringify(api.history(req.value.host, req.value.domain));
    },
  };
  const service = await new Svcm(nc).add({ name: statusServiceName, version: serviceVersion, description: "the fleet's backup status" });
  const group = service.addGroup(subjects.svc.status);
  for (const [endpoint, handle] of Object.entries(handlers) as [StatusEndpoint, (m: ServiceMsg) => string | Uint8Array][]) {
    const subject = subjects.svc.statusEndpoint(endpoint);
    const requests = group.addEndpoint(endpoint, { metadata: statusEndpointMetadata(endpoint) });
    void (async () => {
      for await (const msg of requests) {
        // Only a request published to the endpoint's own subject, awaiting a reply (see the restore service).
        if (msg.subject !== subject || !msg.reply || isRedirectedStoredMessage(msg.headers)) {
          logger.warn({ endpoint, subject: msg.subject }, "status request ignored: not a request published to the endpoint's subject");
          continue;
        }
        try {
          msg.respond(handle(msg));
        } catch (err) {
          const status = errorReplyStatus(err);
          if (status >= 500) logger.error({ err, endpoint }, "status endpoint failed");
          const message = (err as Error).message.replace(/[\r\n]+/g, " ");
          msg.respondError(status, message, JSON.stringify({ error: message }));
        }
      }
    })();
  }
  // The endpoints' subscriptions reach the server before "ready": a request right after start has a responder.
  await nc.flush();
  let http: HttpListener | undefined;
  try {
    if (deps.listen) http = await startHttpListener({ listen: deps.listen, ...api, metrics: metrics.registry });
  } catch (err) {
    await service.stop();
    await consumer.stop();
    await stopPolling();
    throw new Error(`the status page cannot listen on VMBS_HTTP_LISTEN=${deps.listen!.host}:${deps.listen!.port}: ${(err as Error).message}`, { cause: err });
  }
  logger.info({ endpoints: Object.keys(handlers), http: http?.url }, "status service ready");

  return {
    ...api,
    httpUrl: http?.url,
    async stop() {
      await stopPolling();
      await http?.stop();
      await service.stop();
      await consumer.stop();
    },
  };
}
