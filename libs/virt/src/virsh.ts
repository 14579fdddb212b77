import { execa } from "execa";
import { VirshError } from "./virt-errors.js";

/** libvirt's domain states as `virsh domstate` prints them, folded to the ones we act on. */
export type DomainState = "running" | "paused" | "shut off" | "crashed" | "pmsuspended" | "other";

export interface DomainSummary {
  name: string;
  state: DomainState;
}

/** One domain as `virsh dominfo` reports it: found with a single call, for the hot path of a backup. */
export interface DomainInfo {
  name: string;
  state: DomainState;
  persistent: boolean;
}

export interface Virsh {
  /** The domain's state and persistence, or undefined when libvirt has no domain of exactly that name. */
  domainInfo(domain: string): Promise<DomainInfo | undefined>;
  /** Persistent (defined) domains; transient ones can't keep checkpoints across restarts. */
  listPersistentDomains(): Promise<DomainSummary[]>;
  domainState(domain: string): Promise<DomainState>;
  /** Checkpoint names, parents before children. */
  checkpoints(domain: string): Promise<string[]>;
  /** True when a job (e.g. a backup left by a killed engine) runs on the domain. */
  jobActive(domain: string): Promise<boolean>;
  abortJob(domain: string): Promise<void>;
  startPaused(domain: string): Promise<void>;
  /** Stops the domain; libvirt's default is a SIGTERM to QEMU, which still flushes persistent bitmaps. */
  destroy(domain: string): Promise<void>;
  /** `virsh domstate --reason`: the reason text after the state, e.g. "crashed" for a QEMU that died. */
  domainStateReason(domain: string): Promise<string>;
  /**
   * `virsh checkpoint-delete`. Without metadataOnly libvirt also merges/removes the bitmap in the image
   * (needs a readable bitmap); with it only libvirt's record goes (shut-off domains, lost bitmaps).
   */
  deleteCheckpoint(domain: string, name: string, metadataOnly: boolean): Promise<void>;
  /** File-backed disk images (`domblklist --details` rows of type file and device disk), by target. */
  diskImages(domain: string): Promise<{ target: string; path: string }[]>;
  /** ACPI shutdown request; returns at once, the guest decides when (or whether) to stop. */
  shutdown(domain: string): Promise<void>;
  start(domain: string): Promise<void>;
  /** Raw call, for the rare command without a helper. Arguments are never passed through a shell. */
  run(args: string[]): Promise<string>;
}

const knownStates: Record<string, DomainState> = {
  running: "running",
  paused: "paused",
  "shut off": "shut off",
  crashed: "crashed",
  pmsuspended: "pmsuspended",
};

/** Wraps virsh for one libvirt URI. Domain names go in `--domain NAME` so a name starting with `-` stays a name. */
export function createVirsh(uri: string): Virsh {
  const run = async (args: string[]): Promise<string> => {
    const result = await execa("virsh", ["--quiet", "-c", uri, ...args], { reject: false, stripFinalNewline: true });
    if (result.failed) throw new VirshError(args, result.exitCode, String(result.stderr || result.message));
    return String(result.stdout);
  };
  const lines = (text: string) => text.split("\n").filter((l) => l.trim() !== "");
  const domainState = async (domain: string): Promise<DomainState> => {
    const text = (await run(["domstate", "--domain", domain])).trim();
    return knownStates[text] ?? "other";
  };
  return {
    run,
    domainState,
    async domainInfo(domain) {
      let text: string;
      try {
        text = await run(["dominfo", "--domain", domain]);
      } catch (err) {
        if (err instanceof VirshError && /failed to get domain|Domain not found/i.test(err.stderr)) return undefined;
        throw err;
      }
      const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, "m").exec(text)?.[1]?.trim();
      // dominfo also matches a UUID or id; only an exact name match is this domain.
      if (field("Name") !== domain) return undefined;
      return { name: domain, state: knownStates[field("State") ?? ""] ?? "other", persistent: field("Persistent") === "yes" };
    },
    async listPersistentDomains() {
      // Two calls for any number of domains: exact names from `--name`, states from the table (names there are
      // padded, so a row is matched by its exact name); a row that cannot be matched costs a domstate.
      const [names, table] = await Promise.all([run(["list", "--all", "--persistent", "--name"]), run(["list", "--all", "--persistent"])]);
      const stateOf = parseListTable(table);
      const summaries: DomainSummary[] = [];
      for (const name of lines(names)) {
        // A domain can vanish between the calls; it is simply not listed then.
        const state = stateOf.get(name) ?? (await domainState(name).catch(() => undefined));
        if (state) summaries.push({ name, state });
      }
      return summaries;
    },
    async checkpoints(domain) {
      return lines(await run(["checkpoint-list", "--domain", domain, "--name", "--topological"]));
    },
    async jobActive(domain) {
      const text = await run(["domjobinfo", "--domain", domain]);
      const type = /^Job type:\s*(.+)$/m.exec(text)?.[1]?.trim();
      return type !== undefined && type !== "None";
    },
    async abortJob(domain) {
      await run(["domjobabort", "--domain", domain]);
    },
    async domainStateReason(domain) {
      const text = (await run(["domstate", "--domain", domain, "--reason"])).trim();
      return /\(([^)]*)\)\s*$/.exec(text)?.[1] ?? "";
    },
    async deleteCheckpoint(domain, name, metadataOnly) {
      await run(["checkpoint-delete", "--domain", domain, "--checkpointname", name, ...(metadataOnly ? ["--metadata"] : [])]);
    },
    async diskImages(domain) {
      return parseDiskImages(await run(["domblklist", "--domain", domain, "--details"]));
    },
    async shutdown(domain) {
      await run(["shutdown", "--domain", domain]);
    },
    async start(domain) {
      await run(["start", "--domain", domain]);
    },
    async startPaused(domain) {
      await run(["start", "--domain", domain, "--paused"]);
    },
    async destroy(domain) {
      await run(["destroy", "--domain", domain]);
    },
  };
}

/**
 * Parses `virsh --quiet domblklist --details` rows `Type Device Target Source`. The source may contain
 * spaces, so only the first three columns are split off; the types are compared exactly (not "contains").
 */
export function parseDiskImages(text: string): { target: string; path: string }[] {
  const rows: { target: string; path: string }[] = [];
  for (const line of text.split("\n")) {
    const m = /^\s*(\S+)\s+(\S+)\s+(\S+)\s+(.+?)\s*$/.exec(line);
    if (!m || m[1] !== "file" || m[2] !== "disk" || m[4] === "-") continue;
    rows.push({ target: m[3]!, path: m[4]! });
  }
  return rows;
}

const tableRow = /^\s*(?:\d+|-)\s+(.*\S)\s+(running|idle|paused|in shutdown|shut off|crashed|pmsuspended|blocked|dying)\s*$/;

/** `virsh list` rows → state by domain name (the name column is padded: trailing blanks are not part of it). */
export function parseListTable(text: string): Map<string, DomainState> {
  const states = new Map<string, DomainState>();
  for (const line of text.split("\n")) {
    const m = tableRow.exec(line);
    if (m) states.set(m[1]!, knownStates[m[2]!] ?? "other");
  }
  return states;
}
