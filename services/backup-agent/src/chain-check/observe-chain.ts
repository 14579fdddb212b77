import type { DomainState } from "@vmbs/virt";
import { chainFolderPath, readChainFolder, type ChainFolder, type ChainSnapshot, type FileLister } from "@vmbs/chain";
import { imageBitmaps, type Libvirt } from "@vmbs/virt";
import type { Logger } from "@vmbs/logger";
import { findStaleTmp } from "./stale-tmp.js";

export interface ObserveChainDeps {
  libvirt: Libvirt;
  backupRoot: string;
  /** VM_ALLOW_BACKUP_CHAIN_FIX. */
  allowChainFix: boolean;
  logger: Logger;
  /** Folder of engine leftovers; /var/tmp unless a test says otherwise. */
  tmpDir?: string;
  /** Where the chain folder is read: the local disk by default (a test counts the reads). */
  chainFiles?: FileLister;
}

export interface ObserveOptions {
  bootChanged: boolean;
  /** No in-place repair: after a host restart or a failed backup. */
  strict: boolean;
  /** The engine reported missing or broken bitmaps in the run that just failed. */
  bitmapsReportedLost?: boolean;
  /** The domain's state, when the caller read it a moment ago. */
  knownState?: DomainState;
  /** The chain folder, when the caller read it a moment ago under the same lease and left it as it was. */
  knownFolder?: ChainFolder;
  /**
   * The run failed on a full backup disk: an unfinished checkpoint is dropped in place whatever
   * VM_ALLOW_BACKUP_CHAIN_FIX says, because archiving the chain and starting a full cannot fit either.
   */
  repairInPlace?: boolean;
}

/** Engine messages that mean the bitmaps behind libvirt's checkpoints are gone (virtnbdbackup.md §4.3). */
export const BITMAPS_LOST_PATTERN = /checkpoint inconsistent|missing or broken bitmap|Bitmap '[^']*' is not found|not found in backing chain/i;

/** Whether the domain (not the checkpoint records) is running a job; a shut-off domain has none. */
async function jobActive(libvirt: Libvirt, domain: string, state: string): Promise<boolean> {
  if (state !== "running" && state !== "paused") return false;
  return libvirt.jobActive(domain);
}

/**
 * Gathers the facts the chain planner needs about one domain. The caller holds the domain's queue slot,
 * so no backup of ours runs meanwhile; any job seen on the domain is therefore a leftover.
 */
export function createChainObserver(deps: ObserveChainDeps) {
  const { libvirt } = deps;

  /** Bitmaps per image, read only while shut off; null when unknown or unreadable. Also: any bitmap left in-use. */
  async function readBitmaps(domain: string): Promise<{ bitmaps: Record<string, string[]> | null; inUse: boolean }> {
    try {
      const bitmaps: Record<string, string[]> = {};
      let inUse = false;
      for (const { path } of await libvirt.diskImages(domain)) {
        const found = await imageBitmaps(path);
        bitmaps[path] = found.map((b) => b.name);
        inUse ||= found.some((b) => b.inUse && b.name.includes("virtnbdbackup"));
      }
      return { bitmaps, inUse };
    } catch (err) {
      deps.logger.warn({ err, domain }, "could not read the disk bitmaps");
      return { bitmaps: null, inUse: false };
    }
  }

  /** A scratch file is only stale when no domain of the host has a job that could own it. */
  async function anyJobOnHost(): Promise<boolean> {
    for (const d of await libvirt.listPersistentDomains()) {
      if (await jobActive(libvirt, d.name, d.state).catch(() => true)) return true;
    }
    return false;
  }

  return async function observeChain(domain: string, o: ObserveOptions): Promise<ChainSnapshot> {
    // Independent reads run together: this observation precedes every backup.
    const [folder, domainState, libvirtCheckpoints, jobReported] = await Promise.all([
      o.knownFolder ?? readChainFolder(chainFolderPath(deps.backupRoot, domain), domain, deps.chainFiles),
      o.knownState ?? libvirt.domainState(domain),
      libvirt.checkpoints(domain),
      // Asked at once; only an active (running or paused) domain can have a job, so the state decides below.
      libvirt.jobActive(domain).catch(() => false),
    ]);
    const backupJobActive = (domainState === "running" || domainState === "paused") && jobReported;
    const offline = domainState === "shut off";
    const { bitmaps, inUse } = offline ? await readBitmaps(domain) : { bitmaps: null, inUse: false };
    // libvirt records a QEMU that died under it (SIGKILL, OOM) as "shut off (crashed)": its bitmaps were never saved.
    const crashed = offline && (await libvirt.crashed(domain).catch(() => false));
    const staleTmp = await findStaleTmp(async () => backupJobActive || (await anyJobOnHost()), deps.tmpDir);
    return {
      domain,
      folder,
      libvirtCheckpoints,
      domainState,
      backupJobActive,
      bitmaps,
      staleTmp,
      bootChanged: o.bootChanged,
      qemuKilled: o.bitmapsReportedLost === true || inUse || crashed,
      allowChainFix: deps.allowChainFix || o.repairInPlace === true,
      strict: o.strict || o.bootChanged,
    };
  };
}
export type ObserveChain = ReturnType<typeof createChainObserver>;
