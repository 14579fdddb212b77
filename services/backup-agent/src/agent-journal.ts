import { join } from "node:path";
import {
  createCommandJournal,
  jetStreamSender,
  openCommandOutcomeStore,
  openCommandOutcomesBucket,
  openEventOutbox,
  type CommandJournal,
  type EventOutbox,
  type NatsConnection,
} from "@vmbs/bus";
import type { Logger } from "@vmbs/logger";

export interface AgentJournalDeps {
  nc: NatsConnection;
  host: string;
  /** The agent's own state folder (see agentStateDir). */
  stateDir: string;
  logger: Logger;
}

/**
 * The agent's event outbox and its journal of command outcomes: every event leaves through the durable outbox
 * and every command's outcome is recorded, so a lost ack or a NATS restart neither repeats a backup nor loses
 * its events.
 */
export async function openAgentJournal(deps: AgentJournalDeps): Promise<{ outbox: EventOutbox; journal: CommandJournal }> {
  const { nc, host, stateDir, logger } = deps;
  const outbox = await openEventOutbox({
    dir: stateDir,
    send: jetStreamSender(nc),
    // The first failure of an event and then every 20th: a NATS restart is a handful of lines, not hundreds.
    onError: (err, event, attempt) => {
      if (attempt <= 1 || attempt % 20 === 0) logger.warn({ err, subject: event?.subject, msgId: event?.msgId, attempt }, "event not published yet: kept in the outbox");
    },
  });
  // Publish what waited as soon as the connection is back, not at the end of the current backoff.
  void (async () => {
    for await (const status of nc.status()) if (status.type === "reconnect") outbox.wake();
  })().catch((err: unknown) => logger.debug({ err }, "connection status watch ended"));
  const journal = createCommandJournal({
    host,
    outbox,
    store: await openCommandOutcomeStore({
      dir: join(stateDir, "commands"),
      kv: await openCommandOutcomesBucket(nc),
      onError: (err, key) => logger.warn({ err, key }, "command outcome not shared in KV (the local record holds it)"),
    }),
    onReplay: (record) => logger.info({ subject: record.subject, identity: record.identity, events: record.events.length }, "redelivered command answered from its recorded outcome"),
  });
  return { outbox, journal };
}
