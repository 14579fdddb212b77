import { readFile } from "node:fs/promises";
import { hostname } from "node:os";
import type { NatsConnection } from "@nats-io/transport-node";
import { VmbsError, buckets } from "@vmbs/contracts";
import { openKvLeases, type Lease } from "./kv-lease.js";

/*
 * One agent per HOST_ID: the agent holds the key <HOST_ID> of the presence bucket for as long as it lives.
 * Two machines left at the same default hostname (Unraid's "Tower") would otherwise consume each other's
 * commands and write each other's chains.
 */

/** Which machine (and which boot of it) a process runs on. */
export interface MachineIdentity {
  hostname: string;
  /** /etc/machine-id; empty when the file is missing (some containers). */
  machineId: string;
  /** /proc/sys/kernel/random/boot_id: a pid is only meaningful within one boot. */
  bootId: string;
}

/** The value of a presence key. */
export interface PresenceRecord extends MachineIdentity {
  host: string;
  pid: number;
  /** ISO time the agent started. */
  since: string;
}

/** Another live agent serves this host id. */
export class AgentPresenceBusyError extends VmbsError {
  constructor(
    readonly host: string,
    /** The other agent; undefined when its record is unreadable. */
    readonly holder: PresenceRecord | undefined,
    options?: ErrorOptions,
  ) {
    super("busy", `another agent serves HOST_ID ${host}: ${describeHolder(holder)}`, options);
  }
}

export function describeHolder(holder: PresenceRecord | undefined): string {
  return holder ? `${holder.hostname} pid ${holder.pid}, running since ${holder.since}` : "(its record is unreadable)";
}

/**
 * Whether a start may replace the recorded holder: only a holder of this very machine and boot whose
 * process is gone (a crash, kill -9). Anything else — another machine, an unreadable record, a live
 * process — is a second agent for the same host id, until its key expires.
 */
export function mayTakeOver(holder: PresenceRecord | undefined, me: MachineIdentity & { pid: number }, holderAlive: (pid: number) => boolean): boolean {
  if (!holder || typeof holder.pid !== "number") return false;
  const sameMachine = holder.machineId === me.machineId && holder.bootId === me.bootId && holder.hostname === me.hostname;
  // Our own pid: an earlier run of ours (a restarted container gets the same pid), since we hold nothing yet.
  return sameMachine && holder.bootId !== "" && (holder.pid === me.pid || !holderAlive(holder.pid));
}

async function firstLine(file: string): Promise<string> {
  return (await readFile(file, "utf8").catch(() => "")).trim();
}

export async function readMachineIdentity(): Promise<MachineIdentity> {
  return {
    hostname: hostname(),
    machineId: await firstLine("/etc/machine-id"),
    bootId: await firstLine("/proc/sys/kernel/random/boot_id"),
  };
}

/** kill(pid, 0): ESRCH = gone; EPERM = alive but not ours. */
export function isPidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

export interface ClaimPresenceOptions {
  host: string;
  /** Default: the bucket's (kv-buckets.ts); an existing bucket keeps its TTL. */
  ttlMs?: number;
  /** Default `buckets.agentPresence`. */
  bucket?: string;
  /** Default: this process (tests stand in for another one). */
  identity?: MachineIdentity;
  pid?: number;
  holderAlive?: (pid: number) => boolean;
}

/** A claimed presence. */
export interface AgentPresence {
  lease: Lease;
  /** Who holds the key now (after a loss: the agent that took it). */
  holder(): Promise<PresenceRecord | undefined>;
}

function parseRecord(value: string): PresenceRecord | undefined {
  try {
    return JSON.parse(value) as PresenceRecord;
  } catch {
    return undefined;
  }
}

/**
 * Claims the presence key of `host`, renewed every TTL/3 until released. Throws {@link AgentPresenceBusyError}
 * while another agent holds it. `lease.lost` resolves when another agent took the key; a key that merely
 * expired during a NATS outage is re-created.
 */
export async function claimAgentPresence(nc: NatsConnection, o: ClaimPresenceOptions): Promise<AgentPresence> {
  const leases = await openKvLeases(nc, {
    bucket: o.bucket ?? buckets.agentPresence,
    ttlMs: o.ttlMs,
    onExpiry: "reclaim",
    label: "agent presence",
  });
  const identity = o.identity ?? (await readMachineIdentity());
  const record: PresenceRecord = { host: o.host, ...identity, pid: o.pid ?? process.pid, since: new Date().toISOString() };
  const value = JSON.stringify(record);
  const claimed = (lease: Lease): AgentPresence => ({ lease, holder: async () => parseRecord((await leases.current(o.host))?.value ?? "") });
  // A few rounds: the key may expire or change between our create, read and take-over.
  for (let round = 0; round < 5; round++) {
    const lease = await leases.tryAcquire(o.host, value);
    if (lease) return claimed(lease);
    const current = await leases.current(o.host);
    if (!current) continue;
    const holder = parseRecord(current.value);
    if (!mayTakeOver(holder, { ...identity, pid: record.pid }, o.holderAlive ?? isPidAlive)) throw new AgentPresenceBusyError(o.host, holder);
    const taken = await leases.takeOver(o.host, value, current.revision);
    if (taken) return claimed(taken);
  }
  throw new AgentPresenceBusyError(o.host, parseRecord((await leases.current(o.host))?.value ?? ""));
}
