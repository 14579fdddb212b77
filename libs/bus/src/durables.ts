import { DeliverPolicy } from "@nats-io/jetstream";
import {
  agentConsumerName,
  commandVerbs,
  drillConsumerName,
  mirrorConsumerName,
  mirrorEventsConsumerName,
  notifierConsumerName,
  statusConsumerName,
  streams,
  subjects,
  type BusRole,
  type CommandVerb,
} from "@vmbs/contracts";
import type { DurableSpec } from "./consume-durable.js";

/*
 * Every durable consumer of the product, in one place: set-up makes them (roles may not, roles.ts) and each
 * service binds to its own with the same spec, so the two never disagree.
 */

/**
 * Backup commands an agent takes from the stream at once: room for a flooded domain's held ones (the agent
 * coalesces and bounds them) and every other domain's, so no domain waits behind another's flood.
 */
const backupCommandsInFlight = 64;

/** A host's agent, one per command verb; `ackWaitMs` is VMBS_COMMAND_ACK_WAIT. */
export function agentDurable(verb: CommandVerb, host: string, ackWaitMs?: number): DurableSpec {
  const concurrency = verb === "backup" ? backupCommandsInFlight : undefined;
  return { stream: streams.commands, durable: agentConsumerName(verb, host), filterSubject: subjects.cmd.forVerb(verb, host), ackWaitMs, concurrency };
}

/** A host's mirror on its commands: one sync at a time. */
export function mirrorCommandDurable(host: string): DurableSpec {
  return { stream: streams.commands, durable: mirrorConsumerName(host), filterSubject: subjects.cmd.mirror(host), concurrency: 1 };
}

/** A host's mirror on that host's completed backups, from its first start on (no replay of older history). */
export function mirrorEventsDurable(host: string): DurableSpec {
  return {
    stream: streams.events,
    durable: mirrorEventsConsumerName(host),
    filterSubject: subjects.evt.backup(host, "completed"),
    concurrency: 2,
    deliverPolicy: DeliverPolicy.New,
  };
}

/** A host's restore service on its drill commands: one drill at a time. */
export function drillDurable(host: string): DurableSpec {
  return { stream: streams.commands, durable: drillConsumerName(host), filterSubject: subjects.cmd.drill(host), concurrency: 1 };
}

/** The notifier on every event, from its first start on; only Redis trouble retries, so it never gives up. */
export const notifierDurable: DurableSpec = {
  stream: streams.events,
  durable: notifierConsumerName,
  filterSubject: subjects.eventsAll,
  maxDeliver: -1,
  deliverPolicy: DeliverPolicy.New,
};

/**
 * The status service on every event, from the stream's start: its model is built from the whole history the
 * stream holds. One at a time, so a domain's events are folded in order.
 */
export const statusDurable: DurableSpec = {
  stream: streams.events,
  durable: statusConsumerName,
  filterSubject: subjects.eventsAll,
  concurrency: 1,
  maxDeliver: -1,
  deliverPolicy: DeliverPolicy.All,
};

/** The durables of `roles` (a role without any, like the scheduler, has none). */
export function durablesOf(roles: readonly BusRole[], o: { commandAckWaitMs?: number } = {}): DurableSpec[] {
  return roles.flatMap((role): DurableSpec[] => {
    switch (role.kind) {
      case "agent":
        return commandVerbs.map((verb) => agentDurable(verb, role.host, o.commandAckWaitMs));
      case "mirror":
        return [mirrorCommandDurable(role.host), mirrorEventsDurable(role.host)];
      case "restore":
        return [drillDurable(role.host)];
      case "notifier":
        return [notifierDurable];
      case "status":
        return [statusDurable];
      default:
        return [];
    }
  });
}
