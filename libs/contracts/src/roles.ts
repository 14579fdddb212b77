import {
  agentConsumerName,
  buckets,
  commandVerbs,
  drillConsumerName,
  mirrorConsumerName,
  mirrorEventsConsumerName,
  notifierConsumerName,
  restoreServiceName,
  statusConsumerName,
  statusServiceName,
  streams,
  subjects,
  isHostToken,
} from "./subjects.js";

/*
 * Bus roles and their NATS permissions: what each part of VM-Babysitter may publish and subscribe to, spelled
 * from the same subject builders the services use. `vmbs auth init` renders these into a nats-server
 * authorization config. The JetStream API is reached by publishing requests to `$JS.API.…`, so stream, consumer
 * and KV rights are publish rights on those subjects (KV writes are publishes to `$KV.<bucket>.<key>`, reads and
 * key listings are message gets `$JS.API.STREAM.MSG.GET.KV_<bucket>`, see {@link kvRead}).
 * Nobody but the operator (`vmbs start`'s set-up, `vmbs bus setup`) may create, inspect, update, purge or delete a
 * stream or bucket, or create a consumer: a consumer's config (its `deliver_subject` above all) travels in the
 * request body, which subject permissions cannot see, so a role allowed to create one could make the server deliver
 * stream messages to any subject. Roles bind to the durables set-up made, and list KV keys by direct gets.
 */

/** A part of VM-Babysitter that connects to the bus with its own credentials. */
export type BusRole =
  /** `sharedRoots`: host ids whose backup root this host also uses (their chain lease keys, `<rootId>.*`). */
  | { kind: "agent"; host: string; sharedRoots?: readonly string[] }
  | { kind: "mirror"; host: string; sharedRoots?: readonly string[] }
  | { kind: "restore"; host: string; sharedRoots?: readonly string[] }
  | { kind: "scheduler" }
  | { kind: "notifier" }
  /** The fleet's status service: reads every event and the hosts bucket, keeps its model, answers, raises alarms. */
  | { kind: "status" }
  /** Everything: any command, every stream and bucket, stream management. For `vmbs backup` and set-up. */
  | { kind: "operator" };

export type BusRoleKind = BusRole["kind"];

/** What a role may do on the bus. */
export interface RolePermissions {
  publish: string[];
  subscribe: string[];
  /** May answer requests it received (a request/reply service). */
  allowResponses: boolean;
}

/** `agent-hv1`, `scheduler`, …: the role's name, used for its credential file and its inbox prefix. */
export function roleId(role: BusRole): string {
  return "host" in role ? `${role.kind}-${checkHost(role.host)}` : role.kind;
}

/** Inbox prefix of a role: replies (request, JetStream acks, pull batches) go there, and only there. */
export function roleInboxPrefix(role: BusRole): string {
  return `_INBOX.${roleId(role)}`;
}

const api = "$JS.API";
const kvStream = (bucket: string): string => `KV_${bucket}`;

/**
 * A durable pull consumer made by set-up: its info, fetch, and ack/nak/working/term of its messages. Never create
 * or update (see above); the filter is fixed by set-up.
 */
function durableConsumer(stream: string, durable: string): string[] {
  return [`${api}.CONSUMER.INFO.${stream}.${durable}`, `${api}.CONSUMER.MSG.NEXT.${stream}.${durable}`, `$JS.ACK.${stream}.${durable}.>`];
}

/**
 * Reading a bucket's keys (a key's last value, listing by `next_by_subj`) by message gets. Never by direct gets,
 * although their subject could narrow a read to some keys: a direct get answers with the raw stored value on the
 * request's reply subject, which no permission checks, and the JetStream API takes what the server publishes on
 * its subjects as the account's own request — a role reading back a value it wrote would create streams and
 * consumers and lift set-up's limits (reproduced on nats-server 2.9.10). A message get answers in an API response,
 * which the API does not take as a request. The read covers the whole bucket (the key is in the request body).
 */
function kvRead(bucket: string): string[] {
  return [`${api}.STREAM.MSG.GET.${kvStream(bucket)}`];
}

/** Reading a bucket and writing (put, create, update, delete) its keys matching `keys`. */
function kvWrite(bucket: string, keys: string): string[] {
  return [...kvRead(bucket), `$KV.${bucket}.${keys}`];
}

/** Chain leases of this host's own root and of every root it shares (lease keys `<rootId>.<hash>`). */
function chainLeases(host: string, sharedRoots: readonly string[] = []): string[] {
  return [host, ...sharedRoots.map(checkHost)].flatMap((root) => kvWrite(buckets.chainLeases, `${root}.>`));
}

/**
 * NATS micro discovery of one service: `$SRV.PING|INFO|STATS`, optionally followed by its name and instance id.
 * The verbs are spelled out: nats-server 2.9 lets a client whose allow entry ends in `*` subscribe to the same
 * prefix with `>` (the `*` matches the literal token), so `$SRV.*` would take every service's discovery requests.
 */
function microDiscovery(service: string): string[] {
  return ["PING", "INFO", "STATS"].flatMap((verb) => [`$SRV.${verb}`, `$SRV.${verb}.${service}`, `$SRV.${verb}.${service}.*`]);
}

/** Account info: nats.js checks JetStream with it before any other API call. */
const common = [`${api}.INFO`];

/** The NATS permissions of one role. */
export function rolePermissions(role: BusRole): RolePermissions {
  const inbox = [`${roleInboxPrefix(role)}.>`];
  const done = (publish: string[], subscribe: string[] = [], allowResponses = false): RolePermissions => ({
    publish: [...new Set([...common, ...publish])],
    subscribe: [...new Set([...inbox, ...subscribe])],
    allowResponses,
  });
  switch (role.kind) {
    case "operator":
      return { publish: [">"], subscribe: [">"], allowResponses: true };
    case "agent": {
      const host = checkHost(role.host);
      return done([
        ...commandVerbs.flatMap((verb) => durableConsumer(streams.commands, agentConsumerName(verb, host))),
        subjects.evt.serviceAll("backup", host),
        subjects.evt.serviceAll("chain", host),
        subjects.progress.backup(host),
        ...kvWrite(buckets.hosts, host),
        ...kvWrite(buckets.agentState, `${host}.>`),
        ...kvWrite(buckets.agentPresence, host),
        ...kvWrite(buckets.commandOutcomes, `${host}.>`),
        ...chainLeases(host, role.sharedRoots),
      ]);
    }
    case "scheduler":
      return done([subjects.cmd.anyHost("backup"), subjects.cmd.drillAnyHost, ...kvRead(buckets.hosts)]);
    case "mirror": {
      const host = checkHost(role.host);
      return done([
        ...durableConsumer(streams.commands, mirrorConsumerName(host)),
        ...durableConsumer(streams.events, mirrorEventsConsumerName(host)),
        subjects.evt.serviceAll("mirror", host),
        subjects.progress.mirror(host),
        ...chainLeases(host, role.sharedRoots),
      ]);
    }
    case "restore": {
      const host = checkHost(role.host);
      const endpoints = `${subjects.svc.restore(host)}.>`;
      const discovery = microDiscovery(restoreServiceName);
      return done(
        [
          ...durableConsumer(streams.commands, drillConsumerName(host)),
          subjects.evt.serviceAll("restore", host),
          subjects.evt.serviceAll("drill", host),
          subjects.progress.restore(host),
          ...chainLeases(host, role.sharedRoots),
          ...kvRead(buckets.hosts),
        ],
        [endpoints, ...discovery],
        true,
      );
    }
    case "status": {
      const discovery = microDiscovery(statusServiceName);
      return done(
        [
          ...durableConsumer(streams.events, statusConsumerName),
          subjects.evt.serviceAll("fleet", "*"),
          ...kvRead(buckets.hosts),
          ...kvWrite(buckets.status, ">"),
        ],
        [`${subjects.svc.status}.>`, ...discovery],
        true,
      );
    }
    case "notifier":
      return done([
        ...durableConsumer(streams.events, notifierConsumerName),
        subjects.evt.serviceAll("notify", "*"),
        // A run's digest lists the host's scheduled domains.
        ...kvRead(buckets.hosts),
      ]);
  }
}

function checkHost(host: string): string {
  if (!isHostToken(host)) throw new TypeError(`invalid host id ${JSON.stringify(host)}: expected 1-64 of [A-Za-z0-9_-]`);
  return host;
}
