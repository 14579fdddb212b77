/**
 * The ONE place where subjects, stream names and KV bucket names are spelled.
 * Commands: `vmbs.cmd.<verb>.<host>`; events: `vmbs.evt.<service>.<host>.<event>`.
 * The verb comes before the host so that each work-queue consumer filter stays disjoint
 * (nats-server 2.9 rejects overlapping filters on a work-queue stream).
 */

/** Stream names (JetStream names must match `^[-\w]+$`). */
export const streams = {
  /** Work-queue stream over `vmbs.cmd.>`: each command is delivered to one consumer and removed once acked. */
  commands: "VMBS_CMD",
  /** Limits stream over `vmbs.evt.>`: the event history every subscriber can replay. */
  events: "VMBS_EVT",
} as const;

/** KV bucket names. */
export const buckets = {
  /** One key per host: its domain inventory, refreshed by the agent's heartbeat; entries expire when the agent dies. */
  hosts: "vmbs_hosts",
  /**
   * One key per chain folder, `<rootId>.<sha256(domain) first 32 hex>` (rootId: the backup root's marker id): the
   * lease of the single writer (backup, repair, rotation, retention...), shared by every host using that root.
   */
  chainLeases: "vmbs_chain_leases",
  /** Per-host agent state that must survive restarts (e.g. the boot identity it last saw). */
  agentState: "vmbs_agent_state",
  /** Key `<host>`: held (short TTL, renewed) by the one live agent of a host id; a second agent refuses to start. */
  agentPresence: "vmbs_agent_presence",
  /** Keys `<host>.<hash of the command's message id>`: the recorded outcome of each handled command (redelivery). */
  commandOutcomes: "vmbs_command_outcomes",
  /**
   * The status service's model, so a restart rebuilds it from the bus, not from memory: `host.<host>` (the host's
   * alarms) and `domain.<host>.<sha256(domain) first 32 hex>` (the domain's last runs, chain, mirror, drill).
   */
  status: "vmbs_status",
} as const;

export const commandVerbs = ["backup", "check", "rotate", "retention"] as const;
export type CommandVerb = (typeof commandVerbs)[number];

const backupEventTypes = ["started", "completed", "failed"] as const;
export type BackupEventType = (typeof backupEventTypes)[number];

/** `planned`: a dry run's answer (what the next sync would archive and delete); nothing was changed. */
export const mirrorEventTypes = ["started", "completed", "failed", "planned"] as const;
export type MirrorEventType = (typeof mirrorEventTypes)[number];

/**
 * Destructive or noteworthy chain steps, each announced with its reason. `planned`: a dry run's answer, a step
 * that WOULD be taken (nothing was changed).
 */
export const chainEventTypes = ["checked", "repaired", "archived", "deleted", "pruned", "attention", "failed", "planned"] as const;
export type ChainEventType = (typeof chainEventTypes)[number];

/**
 * Events of the notifier: `failed` = a notification gave up after its retries; `digest` = the summary of one host's
 * scheduled run. (A host's silence and an overdue backup are the status service's `fleet` alarms.)
 */
export const notifyEventTypes = ["failed", "digest"] as const;
export type NotifyEventType = (typeof notifyEventTypes)[number];

/**
 * Alarms of the status service about the fleet: `silent` = a host's agent stopped heart-beating, `back` = it
 * heart-beats again, `stale` = a scheduled domain's last good backup is older than its RPO.
 */
export const fleetEventTypes = ["silent", "back", "stale"] as const;
export type FleetEventType = (typeof fleetEventTypes)[number];

/** The `<service>` token of event subjects; each is published only by its own role (see roles.ts). */
const eventServices = ["backup", "chain", "mirror", "restore", "drill", "notify", "fleet"] as const;
export type EventService = (typeof eventServices)[number];

/** `attention`: an instant VM found at the service's start that needs a person (served again, or not servable). */
export const restoreEventTypes = ["started", "progress", "completed", "failed", "attention"] as const;
export type RestoreEventType = (typeof restoreEventTypes)[number];

export const drillEventTypes = ["started", "completed", "failed"] as const;
export type DrillEventType = (typeof drillEventTypes)[number];

/**
 * Request/reply endpoints of the restore service: `vmbs.svc.restore.<host>.<endpoint>` (replicate: replicate.ts;
 * instant, instant-finish, instant-abandon: instant-restore.ts).
 */
export const restoreEndpoints = ["sets", "checkpoints", "plan", "run", "replicate", "replicate-plan", "instant", "instant-finish", "instant-abandon"] as const;
export type RestoreEndpoint = (typeof restoreEndpoints)[number];

/** NATS micro service name of the restore service (`nats micro ls`). */
export const restoreServiceName = "vmbs-restore";

/** Request/reply endpoints of the status service: `vmbs.svc.status.<endpoint>`. */
export const statusEndpoints = ["fleet", "history"] as const;
export type StatusEndpoint = (typeof statusEndpoints)[number];

/** NATS micro service name of the status service. */
export const statusServiceName = "vmbs-status";

export const subjects = {
  commandsAll: "vmbs.cmd.>",
  eventsAll: "vmbs.evt.>",
  cmd: {
    backup: (host: string): string => `vmbs.cmd.backup.${assertHostToken(host)}`,
    check: (host: string): string => `vmbs.cmd.check.${assertHostToken(host)}`,
    rotate: (host: string): string => `vmbs.cmd.rotate.${assertHostToken(host)}`,
    retention: (host: string): string => `vmbs.cmd.retention.${assertHostToken(host)}`,
    /** Any verb for one host. */
    forVerb: (verb: CommandVerb, host: string): string => `vmbs.cmd.${verb}.${assertHostToken(host)}`,
    /** One verb for every host, e.g. `vmbs.cmd.backup.*` (what the scheduler may publish). */
    anyHost: (verb: CommandVerb): string => `vmbs.cmd.${verb}.*`,
    /** The mirror service of one host (issue 8). */
    mirror: (host: string): string => `vmbs.cmd.mirror.${assertHostToken(host)}`,
    /** A restore drill on one host (issue 10). */
    drill: (host: string): string => `vmbs.cmd.drill.${assertHostToken(host)}`,
    /** Drill commands for every host (what the scheduler may publish at DRILL_SCHEDULE). */
    drillAnyHost: "vmbs.cmd.drill.*",
  },
  evt: {
    backup: (host: string, type: BackupEventType): string => `vmbs.evt.backup.${assertHostToken(host)}.${type}`,
    /** Every backup event of one host (`*` = any host). */
    backupAll: (host: string | "*"): string => `vmbs.evt.backup.${host === "*" ? "*" : assertHostToken(host)}.*`,
    chain: (host: string, type: ChainEventType): string => `vmbs.evt.chain.${assertHostToken(host)}.${type}`,
    chainAll: (host: string | "*"): string => `vmbs.evt.chain.${host === "*" ? "*" : assertHostToken(host)}.*`,
    /** The notifier's own events (a notification that exhausted its retries). */
    notify: (host: string, type: NotifyEventType): string => `vmbs.evt.notify.${assertHostToken(host)}.${type}`,
    mirror: (host: string, type: MirrorEventType): string => `vmbs.evt.mirror.${assertHostToken(host)}.${type}`,
    restore: (host: string, type: RestoreEventType): string => `vmbs.evt.restore.${assertHostToken(host)}.${type}`,
    drill: (host: string, type: DrillEventType): string => `vmbs.evt.drill.${assertHostToken(host)}.${type}`,
    /** The status service's alarms about a host (issue 16). */
    fleet: (host: string, type: FleetEventType): string => `vmbs.evt.fleet.${assertHostToken(host)}.${type}`,
    /** Every event of every service of one host. */
    hostAll: (host: string): string => `vmbs.evt.*.${assertHostToken(host)}.*`,
    /** Every event of one service (`backup`, `chain`, `mirror`, `restore`, `drill`, `notify`) of one host or any (`*`). */
    serviceAll: (service: EventService, host: string | "*"): string =>
      `vmbs.evt.${service}.${host === "*" ? "*" : assertHostToken(host)}.*`,
  },
  /**
   * Ephemeral progress of long work, on core NATS outside every stream (`vmbs.progress.<service>.<host>`): for
   * whoever watches now; nothing stores or replays it, and missing one costs nothing.
   */
  progress: {
    backup: (host: string | "*"): string => `vmbs.progress.backup.${host === "*" ? "*" : assertHostToken(host)}`,
    mirror: (host: string | "*"): string => `vmbs.progress.mirror.${host === "*" ? "*" : assertHostToken(host)}`,
    /** Restores and replications of the host's restore service. */
    restore: (host: string | "*"): string => `vmbs.progress.restore.${host === "*" ? "*" : assertHostToken(host)}`,
  },
  /** Request/reply endpoints of a host's restore micro service (issue 10): `vmbs.svc.restore.<host>.<endpoint>`. */
  svc: {
    restore: (host: string): string => `vmbs.svc.restore.${assertHostToken(host)}`,
    restoreEndpoint: (host: string, endpoint: RestoreEndpoint): string => `vmbs.svc.restore.${assertHostToken(host)}.${endpoint}`,
    /** The fleet-wide status service (one for the whole bus). */
    status: "vmbs.svc.status",
    statusEndpoint: (endpoint: StatusEndpoint): string => `vmbs.svc.status.${endpoint}`,
  },
} as const;

/**
 * Nats-Msg-Id of an event: `<subject>#<id>`, the id fixed when the event is made (a backup event's runId, a UUID
 * for a chain event). Every re-publish of that event (outbox retry, redelivered command) carries the same id, so
 * VMBS_EVT drops repeats within its duplicate window and a subscriber can drop later ones by this header.
 */
export function eventMessageId(subject: string, id: string): string {
  return `${subject}#${id}`;
}

/** Durable consumer name of a host's agent for one verb, e.g. `backup-agent-hv1`. */
export function agentConsumerName(verb: CommandVerb, host: string): string {
  return `${verb}-agent-${assertHostToken(host)}`;
}

/** Durable consumer of a host's mirror on its commands (`vmbs.cmd.mirror.<host>`). */
export function mirrorConsumerName(host: string): string {
  return `mirror-${assertHostToken(host)}`;
}

/** Durable consumer of a host's mirror on that host's completed backups (VMBS_EVT). */
export function mirrorEventsConsumerName(host: string): string {
  return `mirror-events-${assertHostToken(host)}`;
}

/** Durable consumer of a host's restore service on its drill commands. */
export function drillConsumerName(host: string): string {
  return `drill-${assertHostToken(host)}`;
}

/** Durable consumer of the notifier on every event (VMBS_EVT). */
export const notifierConsumerName = "notifier";

/** Durable consumer of the status service on every event (VMBS_EVT). */
export const statusConsumerName = "status";
/** NATS subject matching: `*` is one token, a final `>` one or more. */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split(".");
  const s = subject.split(".");
  for (let i = 0; i < p.length; i++) {
    if (p[i] === ">") return s.length > i;
    if (i >= s.length || (p[i] !== "*" && p[i] !== s[i])) return false;
  }
  return p.length === s.length;
}

const hostTokenPattern = /^[A-Za-z0-9_-]{1,64}$/;

/** True when `token` is usable as a host id: one subject token, a valid consumer/KV name. */
export function isHostToken(token: string): boolean {
  return hostTokenPattern.test(token);
}

/**
 * Turns a hostname into a host id: lower case, every character outside `[a-z0-9_-]` becomes `_`
 * (a dot would split the subject token), at most 64 characters.
 */
export function normalizeHostToken(hostname: string): string {
  const token = hostname.toLowerCase().replace(/[^a-z0-9_-]/g, "_").slice(0, 64);
  return token.length > 0 ? token : "host";
}

function assertHostToken(host: string): string {
  if (!isHostToken(host)) throw new TypeError(`invalid host id ${JSON.stringify(host)}: expected 1-64 of [A-Za-z0-9_-]`);
  return host;
}
