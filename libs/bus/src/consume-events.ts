import type { NatsConnection } from "@nats-io/transport-node";
import { DeliverPolicy } from "@nats-io/jetstream";
import { streams } from "@vmbs/contracts";
import { consumeCommands, type CommandConsumer, type ConsumeCommandsOptions } from "./consume-commands.js";

export interface ConsumeEventsOptions extends Omit<ConsumeCommandsOptions, "stream" | "deliverPolicy"> {
  /**
   * Where a NEW durable starts: "new" takes only events published from now on (a notifier must not replay a
   * month of history on its first start), "all" everything the stream still holds (a mirror catching up).
   * An existing durable resumes where it stopped either way. Default "new".
   */
  startAt?: "new" | "all";
}

/**
 * A durable consumer over the events stream (`VMBS_EVT`, e.g. `filterSubject: subjects.evt.backupAll("*")`) for
 * the notifier and the mirror: the same loop as the command consumer (ack / retry / term, `working()` for long
 * handlers), so an event is settled only once its handler has dealt with it, and survives a restart otherwise.
 */
export function consumeEvents(nc: NatsConnection, o: ConsumeEventsOptions): Promise<CommandConsumer> {
  const { startAt, ...rest } = o;
  return consumeCommands(nc, { ...rest, stream: streams.events, deliverPolicy: startAt === "all" ? DeliverPolicy.All : DeliverPolicy.New });
}
