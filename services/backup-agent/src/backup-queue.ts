import { createDomainQueue, type OutboxEvent } from "@vmbs/bus";
import type { BackupLevel } from "@vmbs/contracts";

export interface BackupQueueOptions {
  /** Commands one domain may hold, waiting or running, before the next one is refused. */
  maxPerDomain: number;
  /** Runs of different domains at once. */
  maxRunning: number;
}

/** What became of one command for one domain. */
export type Admission<T> =
  /** Not queued: the domain already holds `held` commands. `refusedInFlood` counts the refusals since it last held none. */
  | { kind: "refused"; held: number; refusedInFlood: number }
  /** `joined`: answered by the run of an earlier identical command that had not started yet (its `work` is not used). */
  | { kind: "queued"; joined: boolean; result: Promise<T> };

interface Batch<T> {
  members: number;
  result: Promise<T>;
}

interface DomainState<T> {
  held: number;
  refused: number;
  /** Runs not started yet, by level: an identical command joins one instead of queueing a run of its own. */
  waiting: Map<BackupLevel, Batch<T>>;
}

/**
 * The agent's backup commands, per domain: identical commands (same domain and level) that wait are answered by
 * one run, a domain holds at most `maxPerDomain` commands, and runs of different domains go on side by side (up
 * to `maxRunning`), so a flood of one domain neither runs thousands of times nor holds up any other.
 * A command never joins a run that has started: the backup it asks for is taken after it arrived.
 */
export function createBackupQueue<T>(o: BackupQueueOptions) {
  const domains = new Map<string, DomainState<T>>();
  const inTurn = createDomainQueue();
  const runSlot = createSlots(o.maxRunning);

  return function submit(domain: string, level: BackupLevel, work: () => Promise<T>): Admission<T> {
    const state = domains.get(domain) ?? { held: 0, refused: 0, waiting: new Map<BackupLevel, Batch<T>>() };
    if (state.held >= o.maxPerDomain) return { kind: "refused", held: state.held, refusedInFlood: ++state.refused };
    state.held++;
    domains.set(domain, state);
    const waiting = state.waiting.get(level);
    if (waiting) {
      waiting.members++;
      return { kind: "queued", joined: true, result: waiting.result };
    }
    // One run of the domain at a time takes a slot: a domain's later runs wait for their turn without holding one.
    const batch: Batch<T> = {
      members: 1,
      result: inTurn(domain, () =>
        runSlot(() => {
          state.waiting.delete(level);
          return work();
        }),
      ).finally(() => {
        state.held -= batch.members;
        if (state.held === 0) domains.delete(domain);
      }),
    };
    state.waiting.set(level, batch);
    return { kind: "queued", joined: false, result: batch.result };
  };
}

/** At most `limit` works at once, started in the order they asked. */
function createSlots(limit: number) {
  let free = limit;
  const next: (() => void)[] = [];
  return async function runSlot<R>(work: () => Promise<R>): Promise<R> {
    if (free > 0) free--;
    else await new Promise<void>((resolve) => next.push(resolve));
    try {
      return await work();
    } finally {
      // The slot passes straight to the next waiter, so a newcomer cannot overtake it.
      const wake = next.shift();
      if (wake) wake();
      else free++;
    }
  };
}

/**
 * An event of a run as the answer to a command that joined it: the same run (runId), that command's requestId,
 * and a message id of its own (`commandKey`: its journal key) so the stream keeps it beside the original.
 */
export function answerFor(event: OutboxEvent, requestId: string | undefined, commandKey: string): OutboxEvent {
  return { subject: event.subject, msgId: `${event.msgId}@${commandKey}`, payload: { ...(event.payload as object), requestId } };
}
