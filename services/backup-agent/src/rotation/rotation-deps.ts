import type { ChainEvent } from "@vmbs/contracts";
import type { FileLister } from "@vmbs/chain";
import type { Logger } from "@vmbs/logger";

/** What rotation and retention need from their surroundings; the effects stay at this edge. */
export interface RotationDeps {
  /** LOCAL_BACKUP_PATH: the active chain folders and their archives. */
  backupRoot: string;
  /** Host id, put into every announced event. */
  host: string;
  /**
   * Every libvirt domain name of this host (ignored ones included): their folders are active chains, which
   * retention never deletes even when a name looks like another domain's archive.
   */
  domainNames(): Promise<readonly string[]>;
  /**
   * Takes the chain lease of the folder `<root>/<name>` (as if `name` were a domain) without waiting; resolves
   * its release, or undefined when someone holds it — then the folder is being written (e.g. it is the active
   * chain of a domain of another host sharing the root) and retention leaves it alone.
   */
  lockFolder(name: string): Promise<(() => Promise<void>) | undefined>;
  /**
   * Announces one chain event; in the agent, its chain event publisher (through the durable event outbox).
   * A rejection is logged, never undoes or stops the step already taken.
   */
  publish(event: ChainEvent): Promise<unknown> | void;
  logger: Logger;
  /** Zone for archive names and calendar buckets (IANA name). Default: the process zone. */
  timeZone?: string;
  /** Clock, epoch ms. Default `Date.now`. */
  now?: () => number;
  /** Where the active chain folder is read: the local disk by default (a test counts the reads). */
  chainFiles?: FileLister;
}

/** What started a step, as announced in `ChainEvent.trigger`. */
export interface StepContext {
  /** "before-backup", "command", "rotation", "retention", ... Default depends on the step. */
  trigger?: string;
  requestId?: string;
}

/** Fields every announcement needs beyond host, time and trigger. */
type Announcement = Omit<ChainEvent, "host" | "at" | "trigger" | "requestId">;

/**
 * Logs a chain step and announces it. Returns false when the announcement could not be published (the step
 * itself stands; the log line still records it).
 */
export async function announce(deps: RotationDeps, ctx: StepContext, fallbackTrigger: string, a: Announcement): Promise<boolean> {
  const now = deps.now?.() ?? Date.now();
  const event: ChainEvent = {
    ...a,
    host: deps.host,
    trigger: ctx.trigger ?? fallbackTrigger,
    ...(ctx.requestId !== undefined ? { requestId: ctx.requestId } : {}),
    at: new Date(now).toISOString(),
  };
  const level = a.type === "failed" ? "error" : "info";
  deps.logger[level]({ event: event.type, domain: event.domain, step: event.step, folders: event.folders, requestId: event.requestId }, event.reason);
  try {
    await deps.publish(event);
    return true;
  } catch (err) {
    deps.logger.warn({ err, event }, "could not announce a chain event");
    return false;
  }
}
