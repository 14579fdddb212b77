import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { chmod, copyFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { formatWordList } from "@vmbs/config";
import { domainDiskDigest } from "./disk-digest.js";
import { labDomainXml, OVMF_VARS_TEMPLATE } from "./domain-xml.js";
import { type GuestWrite, writeImage, writeLive } from "./guest-write.js";
import { DEFAULT_LAB_IMAGE_DIR, LAB_DOMAIN_PREFIX } from "./lab-constants.js";
import { DEFAULT_LIBVIRT_URI, ensureLibvirt } from "./libvirt-daemons.js";
import { asError, removeDomain, reportErrors } from "./teardown.js";
import { domainState, isOffline, virsh } from "./virsh.js";

/** Options for {@link createLab}. */
export interface LabOptions {
  /** libvirt URI. Default `qemu:///system`. */
  uri?: string;
  /** Folder for disk images; must be traversable by the qemu user. Default `/var/lib/libvirt/images/vmbs-lab`. */
  imageDir?: string;
}

/** Options for {@link Lab.createDomain}. */
export interface CreateDomainOptions {
  /**
   * Domain name (spaces and non-ASCII allowed); it must contain the lab's {@link Lab.domainPrefix}. Default
   * `<domainPrefix><n>`, n counting this lab's domains: short, so that prompts naming two of them fit a terminal line.
   */
  name?: string;
  /** Virtual disk size in MiB. Default 64. */
  sizeMiB?: number;
  /** Start the domain after defining it. Default true. */
  running?: boolean;
  /**
   * `bios` (default): SeaBIOS on `pc`. `efi`: Debian's OVMF on `q35`, with its own variable store (nvram) in the
   * image folder, created from OVMF's template at once so a test can read or change it before the first start.
   */
  firmware?: "bios" | "efi";
  /** Give it an emulated TPM 2.0 (swtpm). Its state appears at the first start. Default false. */
  tpm?: boolean;
}

/** A domain created by a lab. */
export interface LabDomain {
  name: string;
  /** Its qcow2 image. */
  diskPath: string;
  target: "vda";
  /** Its UEFI variable store (`firmware: "efi"` only). */
  nvramPath?: string;
}

/** A real libvirt/QEMU test bench that remembers what it created, so {@link Lab.cleanup} can remove it. */
export interface Lab {
  readonly uri: string;
  readonly imageDir: string;
  /**
   * `vmbs-lab-<8 random hex>-`: in the name of every domain of this lab, and of no other lab's. Several test files share
   * one libvirtd at once; their agents back up only their own lab's domains through {@link Lab.allowedList}.
   */
  readonly domainPrefix: string;
  /** A VM_ALLOWED_LIST value matching every domain this lab creates, now or later, and nothing else. */
  readonly allowedList: string;
  /** Creates a qcow2 image and defines (and by default starts) a TCG domain on it. */
  createDomain(o?: CreateDomainOptions): Promise<LabDomain>;
  /** Fills guest disk bytes with a pattern: through QEMU if it runs, else into the image. */
  writeGuest(domain: string, o: GuestWrite): Promise<void>;
  /** sha256 of the guest-visible disk of a domain of this lab, taken consistently. */
  diskDigest(domain: string): Promise<string>;
  /** Creates a folder under /var/tmp (mode 755, so QEMU can use it), removed by cleanup. */
  tempDir(prefix: string): Promise<string>;
  /** Removes every domain, image and temp folder of this lab. Never throws; idempotent. */
  cleanup(): Promise<void>;
}

/** Creates a lab on `uri` (starting libvirt if needed). */
export async function createLab(opts: LabOptions = {}): Promise<Lab> {
  const uri = opts.uri ?? DEFAULT_LIBVIRT_URI;
  const imageDir = opts.imageDir ?? DEFAULT_LAB_IMAGE_DIR;
  await ensureLibvirt(uri);
  await mkdir(imageDir, { recursive: true });
  // QEMU runs as libvirt-qemu (uid 64055) and must traverse to the image.
  await chmod(imageDir, 0o755);

  const domains = new Map<string, LabDomain>();
  // Images are tracked apart from domains: an image whose define failed still has to go.
  const images = new Set<string>();
  const tempDirs = new Set<string>();

  const known = (domain: string): LabDomain => {
    const found = domains.get(domain);
    if (!found) throw new Error(`domain ${JSON.stringify(domain)} was not created by this lab`);
    return found;
  };

  const domainPrefix = `${LAB_DOMAIN_PREFIX}${randomBytes(4).toString("hex")}-`;
  let created = 0;

  return {
    uri,
    imageDir,
    domainPrefix,
    // A glob around the prefix, so a name that starts with something else (a leading dash) is still this lab's.
    allowedList: formatWordList([`*${domainPrefix}*`]),

    async createDomain(o = {}) {
      // The file name comes from random hex only: domain names may hold anything.
      const id = randomBytes(4).toString("hex");
      const name = o.name ?? `${domainPrefix}${++created}`;
      if (!name.includes(domainPrefix)) throw new Error(`domain name ${JSON.stringify(name)} lacks this lab's prefix ${domainPrefix}: another test's agent could back it up`);
      const diskPath = join(imageDir, `${LAB_DOMAIN_PREFIX}${id}.qcow2`);
      const sizeMiB = o.sizeMiB ?? 64;
      images.add(diskPath);
      const nvramPath = o.firmware === "efi" ? join(imageDir, `${LAB_DOMAIN_PREFIX}${id}_VARS.fd`) : undefined;
      if (nvramPath !== undefined) {
        images.add(nvramPath);
        await copyFile(OVMF_VARS_TEMPLATE, nvramPath, constants.COPYFILE_EXCL);
      }
      await execa("qemu-img", ["create", "-f", "qcow2", "-o", "compat=1.1", diskPath, `${sizeMiB}M`], {
        stdin: "ignore",
        timeout: 60_000,
      });
      const xmlDir = await mkdtemp(join(tmpdir(), "vmbs-lab-xml-"));
      try {
        const xmlFile = join(xmlDir, "domain.xml");
        await writeFile(xmlFile, labDomainXml({ name, diskPath, ...(nvramPath ? { nvramPath } : {}), tpm: o.tpm ?? false }), "utf8");
        await virsh(uri, ["define", xmlFile]);
      } finally {
        await rm(xmlDir, { recursive: true, force: true });
      }
      // Recorded only once defined, so cleanup never touches a same-named foreign domain.
      const domain: LabDomain = { name, diskPath, target: "vda", ...(nvramPath ? { nvramPath } : {}) };
      domains.set(name, domain);
      if (o.running ?? true) await virsh(uri, ["start", name]);
      return domain;
    },

    async writeGuest(domain, o) {
      const { diskPath } = known(domain);
      if (isOffline(await domainState(uri, domain))) await writeImage(diskPath, o);
      else await writeLive(uri, domain, o);
    },

    async diskDigest(domain) {
      return domainDiskDigest(uri, domain, known(domain).diskPath);
    },

    async tempDir(prefix) {
      const dir = await mkdtemp(join("/var/tmp", prefix));
      tempDirs.add(dir);
      await chmod(dir, 0o755);
      return dir;
    },

    async cleanup() {
      const errors: Error[] = [];
      for (const { name } of domains.values()) {
        const failed = await removeDomain(uri, name);
        errors.push(...failed);
        if (failed.length === 0) domains.delete(name);
      }
      for (const path of [...images, ...tempDirs]) {
        try {
          await rm(path, { recursive: true, force: true });
          images.delete(path);
          tempDirs.delete(path);
        } catch (err) {
          errors.push(asError(err));
        }
      }
      reportErrors("lab cleanup", errors);
    },
  };
}
