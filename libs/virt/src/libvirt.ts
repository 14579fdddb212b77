import { createLibvirtBridge, type LibvirtBridgeOptions } from "./libvirt-bridge.js";

/** libvirt's domain states, folded to the ones we act on (names as `virsh domstate` prints them). */
export type DomainState = "running" | "paused" | "shut off" | "crashed" | "pmsuspended" | "other";

export interface DomainSummary {
  name: string;
  state: DomainState;
}

/** A disk's block job as libvirt reports it. */
export interface BlockJob {
  /** virDomainBlockJobType (2: copy). */
  type: number;
  cur: number;
  end: number;
}

/** One domain looked up by its exact name. */
export interface DomainInfo {
  name: string;
  state: DomainState;
  persistent: boolean;
}

export interface Libvirt {
  /** The domain's state and persistence, or undefined when libvirt has no domain of exactly that name. */
  domainInfo(domain: string): Promise<DomainInfo | undefined>;
  /** Persistent (defined) domains; transient ones can't keep checkpoints across restarts. */
  listPersistentDomains(): Promise<DomainSummary[]>;
  domainState(domain: string): Promise<DomainState>;
  /** True when libvirt recorded that the domain's QEMU died under it (SIGKILL, OOM): "shut off (crashed)". */
  crashed(domain: string): Promise<boolean>;
  /** Checkpoint names, parents before children. */
  checkpoints(domain: string): Promise<string[]>;
  /** True when a job (e.g. a backup left by a killed engine) runs on the domain; fails for an inactive one. */
  jobActive(domain: string): Promise<boolean>;
  /**
   * True while QEMU still runs a backup block job on one of the running domain's disks: after an abort this
   * can outlast the job jobActive sees, and virtnbdbackup refuses to start meanwhile.
   */
  backupBlockJobActive(domain: string): Promise<boolean>;
  abortJob(domain: string): Promise<void>;
  startPaused(domain: string): Promise<void>;
  /** Stops the domain; libvirt's default is a SIGTERM to QEMU, which still flushes persistent bitmaps. */
  destroy(domain: string): Promise<void>;
  /**
   * Deletes a checkpoint. Without metadataOnly libvirt also merges/removes the bitmap in the image (needs a
   * readable bitmap); with it only libvirt's record goes (shut-off domains, lost bitmaps).
   */
  deleteCheckpoint(domain: string, name: string, metadataOnly: boolean): Promise<void>;
  /** File-backed disk images (type file, device disk, with a source), by target. */
  diskImages(domain: string): Promise<{ target: string; path: string }[]>;
  /** ACPI shutdown request; returns at once, the guest decides when (or whether) to stop. */
  shutdown(domain: string): Promise<void>;
  start(domain: string): Promise<void>;
  /** The persistent definition (`dumpxml --inactive --security-info`). */
  domainXml(domain: string): Promise<string>;
  /**
   * The domain's emulated TPM (swtpm), from its persistent definition: the TPM version (`2.0`, `1.2`; empty when
   * the XML names none) and the domain's UUID, which names its state folder (see tpm-state.ts). Undefined without one.
   */
  tpmEmulator(domain: string): Promise<{ uuid: string; version: string } | undefined>;
  /** Every interface MAC (lower case) of every domain, live and persistent definitions. */
  macAddresses(): Promise<string[]>;
  /** Target paths of the file-system storage pools (dir, fs, netfs), where libvirt keeps images. */
  storagePoolPaths(): Promise<string[]>;
  /** Defines (or redefines) a persistent domain from its XML; returns its name. */
  defineXml(xml: string): Promise<string>;
  /** Removes a shut-off domain's definition, its checkpoint and snapshot metadata, UEFI variable store and TPM state. */
  undefine(domain: string): Promise<void>;
  /** The running definition (`dumpxml` of the live domain). */
  liveXml(domain: string): Promise<string>;
  /**
   * Starts copying the running domain's disk `disk` (a target), its backing chain flattened, into the existing
   * qcow2 image `dest` (a transient job: it ends with libvirtd). Follow it with blockJob, end it with blockJobAbort.
   */
  blockCopy(domain: string, disk: string, dest: string): Promise<void>;
  /** The disk's block job, bytes done of bytes to do (`end` may grow while the guest writes); undefined when none. */
  blockJob(domain: string, disk: string): Promise<BlockJob | undefined>;
  /** Ends the disk's block job: with pivot a ready copy job switches the disk onto the copy, else the copy is dropped. */
  blockJobAbort(domain: string, disk: string, pivot: boolean): Promise<void>;
  /** A QMP command passed to the domain's QEMU monitor (JSON text in, JSON text out). */
  qemuMonitorCommand(domain: string, command: string): Promise<string>;
  /** libvirt's and the hypervisor's (QEMU's) versions, e.g. `{ libvirt: "9.0.0", qemu: "7.2.0" }`. */
  versions(): Promise<{ libvirt: string; qemu: string }>;
  /** Ends the connection (its helper process); a later call opens a new one. */
  close(): Promise<void>;
}

/** virDomainState numbers → our names; "blocked" and "in shutdown" are "other", as before. */
const stateNames: Record<number, DomainState> = { 1: "running", 3: "paused", 5: "shut off", 6: "crashed", 7: "pmsuspended" };
const VIR_DOMAIN_SHUTOFF = 5;
const VIR_DOMAIN_SHUTOFF_CRASHED = 3;

const stateOf = (n: number): DomainState => stateNames[n] ?? "other";

interface RawState {
  state: number;
  reason: number;
}

/**
 * libvirt for one URI, through one long-lived connection (see libvirt-bridge.py for why not `virsh`).
 * Domains are always looked up by their exact name.
 */
export function createLibvirt(uri: string, options: LibvirtBridgeOptions = {}): Libvirt {
  const bridge = createLibvirtBridge(uri, options);
  const onDomain = (op: string, domain: string, args: Record<string, unknown> = {}) => bridge.call(op, { domain, ...args });
  const rawState = async (domain: string) => (await onDomain("domainState", domain)) as RawState;

  return {
    async domainInfo(domain) {
      const info = (await onDomain("domainInfo", domain)) as (RawState & { name: string; persistent: boolean }) | null;
      return info ? { name: info.name, state: stateOf(info.state), persistent: info.persistent } : undefined;
    },
    async listPersistentDomains() {
      const rows = (await bridge.call("listPersistent")) as (RawState & { name: string })[];
      return rows.map((r) => ({ name: r.name, state: stateOf(r.state) }));
    },
    async domainState(domain) {
      return stateOf((await rawState(domain)).state);
    },
    async crashed(domain) {
      const { state, reason } = await rawState(domain);
      return state === VIR_DOMAIN_SHUTOFF && reason === VIR_DOMAIN_SHUTOFF_CRASHED;
    },
    async checkpoints(domain) {
      return (await onDomain("checkpoints", domain)) as string[];
    },
    async jobActive(domain) {
      return (await onDomain("jobActive", domain)) as boolean;
    },
    async backupBlockJobActive(domain) {
      return (await onDomain("backupBlockJob", domain)) as boolean;
    },
    async abortJob(domain) {
      await onDomain("abortJob", domain);
    },
    async deleteCheckpoint(domain, name, metadataOnly) {
      await onDomain("deleteCheckpoint", domain, { name, metadataOnly });
    },
    async diskImages(domain) {
      return (await onDomain("diskImages", domain)) as { target: string; path: string }[];
    },
    async shutdown(domain) {
      await onDomain("shutdown", domain);
    },
    async start(domain) {
      await onDomain("start", domain);
    },
    async startPaused(domain) {
      await onDomain("start", domain, { paused: true });
    },
    async destroy(domain) {
      await onDomain("destroy", domain);
    },
    async domainXml(domain) {
      return (await onDomain("domainXml", domain)) as string;
    },
    async tpmEmulator(domain) {
      return ((await onDomain("tpmEmulator", domain)) as { uuid: string; version: string } | null) ?? undefined;
    },
    async macAddresses() {
      return (await bridge.call("macAddresses")) as string[];
    },
    async storagePoolPaths() {
      return (await bridge.call("storagePoolPaths")) as string[];
    },
    async defineXml(xml) {
      return (await bridge.call("defineXml", { xml })) as string;
    },
    async undefine(domain) {
      await onDomain("undefine", domain);
    },
    async liveXml(domain) {
      return (await onDomain("liveXml", domain)) as string;
    },
    async blockCopy(domain, disk, dest) {
      await onDomain("blockCopy", domain, { disk, dest });
    },
    async blockJob(domain, disk) {
      return ((await onDomain("blockJob", domain, { disk })) as BlockJob | null) ?? undefined;
    },
    async blockJobAbort(domain, disk, pivot) {
      await onDomain("blockJobAbort", domain, { disk, pivot });
    },
    async qemuMonitorCommand(domain, command) {
      return (await onDomain("qemuMonitor", domain, { command })) as string;
    },
    async versions() {
      return (await bridge.call("versions", {})) as { libvirt: string; qemu: string };
    },
    close: () => bridge.close(),
  };
}
