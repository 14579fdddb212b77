import { constants } from "node:fs";
import { chmod, copyFile, link, lstat, mkdir, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { execa } from "execa";
import { rsyncRemoteShell, shellQuote } from "@vmbs/config";
import { convertImage } from "@vmbs/virt";
import { realPathOf } from "./confine.js";
import { targetSshOptions, type TargetTransport } from "./replicate-plan.js";

/**
 * Files on a replication target: this machine, or the target's host over ssh. New files are written under a
 * partial name first and then hard-linked to their name, which fails rather than replace an existing file.
 */
export interface TargetFiles {
  /** Those of `paths` that exist on the target. */
  existing(paths: readonly string[]): Promise<string[]>;
  /** `paths` with `..` and symlinks resolved on the target, also where they do not exist yet. */
  realPaths(paths: readonly string[]): Promise<string[]>;
  /** Copies an image in its own format (`qemu-img convert -O <format>`) to `dest`; `onProgress` gets the convert's fraction done. */
  copyImage(source: string, format: string, dest: string, signal: AbortSignal, onProgress?: (fraction: number) => void): Promise<void>;
  /** Copies a small file (the UEFI variables) to `dest`. */
  copyFile(source: string, dest: string, signal: AbortSignal): Promise<void>;
  /** Removes files this replication created (a failed run). */
  remove(paths: readonly string[]): Promise<void>;
}

export interface TargetFilesOptions {
  sshOptions: readonly string[];
  /** Names the partial files and the local staging folder. */
  runId: string;
  /** Limit of one image copy (convert or transfer). */
  copyTimeoutMs: number;
}

/** ssh commands that only touch metadata (mkdir, ln, rm, test) must answer quickly. */
const SSH_COMMAND_TIMEOUT_MS = 120_000;

export function createTargetFiles(transport: TargetTransport, o: TargetFilesOptions): TargetFiles {
  const partial = (dest: string): string => join(dirname(dest), `.${basename(dest)}.vmbs-partial-${o.runId}`);
  const convert: Convert = async (source, format, out, signal, onProgress) => {
    await convertImage(source, format, out, { timeoutMs: o.copyTimeoutMs, signal, ...(onProgress ? { onProgress } : {}) });
    // Guest data: only root reads it; libvirt's dynamic ownership hands it to QEMU's user while the domain runs.
    await chmod(out, 0o600);
  };
  return transport.kind === "local" ? localFiles(partial, convert) : sshFiles(transport, o, partial, convert);
}

type Convert = (source: string, format: string, out: string, signal: AbortSignal, onProgress?: (fraction: number) => void) => Promise<void>;

function localFiles(partial: (dest: string) => string, convert: Convert): TargetFiles {
  /** Writes `dest` through its partial file; the partial is gone afterwards, whatever happened. */
  const place = async (dest: string, write: (tmp: string) => Promise<void>): Promise<void> => {
    await makeTraversable(dirname(dest));
    const tmp = partial(dest);
    try {
      await write(tmp);
      await link(tmp, dest);
    } finally {
      await rm(tmp, { force: true });
    }
  };
  return {
    async existing(paths) {
      const found = await Promise.all(paths.map((p) => lstat(p).then(() => p, () => undefined)));
      return found.filter((p): p is string => p !== undefined);
    },
    realPaths: (paths) => Promise.all(paths.map(realPathOf)),
    copyImage: (source, format, dest, signal, onProgress) => place(dest, (tmp) => convert(source, format, tmp, signal, onProgress)),
    copyFile: (source, dest) => place(dest, (tmp) => copyFile(source, tmp, constants.COPYFILE_EXCL)),
    async remove(paths) {
      for (const p of paths) await rm(p, { force: true });
    },
  };
}

/**
 * Creates `dir` and its missing parents traversable by QEMU's user: the service's umask (077) would leave them
 * private, and the copy would not start.
 */
async function makeTraversable(dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true });
  if (first === undefined) return;
  for (let d = dir; d.length >= first.length; d = dirname(d)) await chmod(d, 0o755);
}

function sshFiles(t: Extract<TargetTransport, { kind: "ssh" }>, o: TargetFilesOptions, partial: (dest: string) => string, convert: Convert): TargetFiles {
  const ssh = targetSshOptions(t, o.sshOptions);
  // ssh hands the remote side one command line: every path in it is a single-quoted word.
  const remote = (script: string, words: readonly string[]) =>
    execa("ssh", [...ssh, "--", t.host, `set -- ${words.map(shellQuote).join(" ")}; ${script}`], { stdin: "ignore", timeout: SSH_COMMAND_TIMEOUT_MS });
  /** Sends a local file to `dest` on the target: rsync to the partial name, then link it to its name. */
  const push = async (local: string, dest: string, signal: AbortSignal): Promise<void> => {
    const tmp = partial(dest);
    await remote('mkdir -p -- "$1"', [dirname(dest)]);
    try {
      // -s: the remote path is not split or expanded by the remote shell.
      await execa("rsync", ["--sparse", "--perms", "-s", "-e", rsyncRemoteShell(ssh), "--", local, `${t.host}:${tmp}`], { stdin: "ignore", timeout: o.copyTimeoutMs, cancelSignal: signal });
      await remote('ln -- "$1" "$2"', [tmp, dest]);
    } finally {
      await remote('rm -f -- "$1"', [tmp]).catch(() => undefined);
    }
  };
  return {
    async existing(paths) {
      if (paths.length === 0) return [];
      const r = await remote('for p in "$@"; do if [ -e "$p" ] || [ -L "$p" ]; then printf "%s\\n" "$p"; fi; done', paths);
      return String(r.stdout).split("\n").filter((p) => paths.includes(p));
    },
    async realPaths(paths) {
      if (paths.length === 0) return [];
      // NUL-separated: a path may hold a newline.
      const r = await remote('realpath -m -z -- "$@"', paths);
      const real = String(r.stdout).split("\0").slice(0, -1);
      if (real.length !== paths.length) throw new Error(`realpath on ${t.host} gave ${real.length} paths for ${paths.length}`);
      return real;
    },
    async copyImage(source, format, dest, signal, onProgress) {
      // qcow2 cannot be written as a stream: converted here next to the source, then sent.
      const staging = join(dirname(source), `.vmbs-replicate-${o.runId}`);
      await mkdir(staging, { recursive: true, mode: 0o700 });
      try {
        const tmp = join(staging, basename(dest));
        // The progress is the convert's; the transfer after it is not followed.
        await convert(source, format, tmp, signal, onProgress);
        await push(tmp, dest, signal);
      } finally {
        await rm(staging, { recursive: true, force: true });
      }
    },
    async copyFile(source, dest, signal) {
      await push(source, dest, signal);
    },
    async remove(paths) {
      if (paths.length > 0) await remote('rm -f -- "$@"', paths);
    },
  };
}
