import { readFile, rename } from "node:fs/promises";
import { Client, type ConnectConfig, type SFTPWrapper, type Stats } from "ssh2";
import { localFileRemover, type FileFacts, type FileKind, type FileRemover, type ListedEntry } from "@vmbs/chain";
import type { SshSettings } from "@vmbs/config";
import { knownHostName, loadKnownHosts, preferredHostKeyAlgorithms, verifyHostKey } from "./known-hosts.js";
import { VmbsError } from "@vmbs/contracts";

/**
 * The file operations the mirror needs on its target: reading (a chain FileLister, for verification and
 * archive names), unlink and rmdir (retention, a chain FileRemover) and rename (archive). Never a remote shell.
 */
export interface MirrorStore extends FileRemover {
  rename(from: string, to: string): Promise<void>;
  close(): Promise<void>;
}

/** The mirror target cannot be reached or answered with an error. */
export class MirrorStoreError extends VmbsError {
  constructor(message: string, options?: ErrorOptions) {
    super("failed", message, options);
  }
}

export function localMirrorStore(): MirrorStore {
  return { ...localFileRemover, rename, close: async () => undefined };
}

/* SFTP status codes (draft-ietf-secsh-filexfer): 2 = no such file; mapped to ENOENT as FileLister requires. */
const SFTP_NO_SUCH_FILE = 2;

function mapError(err: unknown, op: string, path: string): Error {
  const code = (err as { code?: unknown }).code;
  const e = new MirrorStoreError(`${op} ${path}: ${(err as Error).message}`, { cause: err });
  if (code === SFTP_NO_SUCH_FILE) Object.assign(e, { code: "ENOENT" });
  return e;
}

function kindOf(st: Stats): FileKind {
  return st.isFile() ? "file" : st.isDirectory() ? "directory" : st.isSymbolicLink() ? "symlink" : "other";
}

/**
 * SFTP over ssh2, honouring SSH_OPTIONS' port, identity files, connect timeout and known_hosts policy: the server's
 * host key is checked before anything is read or deleted.
 */
export async function openSftpStore(o: { host: string; user: string; ssh: SshSettings }): Promise<MirrorStore> {
  const keys = await Promise.all(o.ssh.identityFiles.map((f) => readFile(f).catch(() => undefined)));
  const privateKey = keys.find((k) => k !== undefined);
  if (!privateKey) throw new MirrorStoreError(`no readable identity file in SSH_OPTIONS (${o.ssh.identityFiles.join(", ") || "none given"})`);
  const preferred = preferredHostKeyAlgorithms(await loadKnownHosts(o.ssh.hostKeys), knownHostName(o.host, o.ssh.port));
  const client = new Client();
  /** Why the host key was refused; ssh2 itself only says "Host denied (verification failed)". */
  let refusal: Error | undefined;
  const config: ConnectConfig = {
    host: o.host,
    port: o.ssh.port,
    username: o.user,
    privateKey,
    readyTimeout: o.ssh.connectTimeoutMs,
    keepaliveInterval: 10_000,
    hostVerifier: (key: Buffer, verify: (valid: boolean) => void) => {
      verifyHostKey(o.ssh.hostKeys, o.host, o.ssh.port, key).then(
        () => verify(true),
        (err: Error) => {
          refusal = err;
          verify(false);
        },
      );
    },
    // ssh2's prepend skips algorithms already in its defaults, so they are removed first (keys apply in order).
    ...(preferred.length > 0 ? { algorithms: { serverHostKey: { remove: preferred, prepend: preferred, append: [] } } } : {}),
  };
  const sftp = await new Promise<SFTPWrapper>((resolve, reject) => {
    client.once("error", (err) => reject(refusal ?? new MirrorStoreError(`ssh ${o.user}@${o.host}:${o.ssh.port}: ${err.message}`, { cause: err })));
    client.once("ready", () => client.sftp((err, s) => (err ? reject(new MirrorStoreError(`sftp: ${err.message}`, { cause: err })) : resolve(s))));
    client.connect(config);
  }).catch((err: unknown) => {
    client.end();
    throw err;
  });
  client.on("error", () => undefined); // later errors surface as failed operations
  const call = <T>(op: string, path: string, fn: (cb: (err: Error | null | undefined, v?: T) => void) => void): Promise<T> =>
    new Promise<T>((resolve, reject) => fn((err, v) => (err ? reject(mapError(err, op, path)) : resolve(v as T))));

  return {
    async readdir(path): Promise<ListedEntry[]> {
      const list = await call<{ filename: string; attrs: Stats }[]>("readdir", path, (cb) => sftp.readdir(path, cb));
      return list.map((e) => ({ name: e.filename, kind: kindOf(e.attrs) }));
    },
    async lstat(path): Promise<FileFacts> {
      const st = await call<Stats>("lstat", path, (cb) => sftp.lstat(path, cb));
      // SFTP v3 carries whole seconds only.
      return { kind: kindOf(st), size: st.size, mtimeMs: st.mtime * 1000 };
    },
    async readFile(path) {
      const buf = await call<Buffer>("read", path, (cb) => sftp.readFile(path, cb));
      return buf.toString("utf8");
    },
    rename: (from, to) => call<void>("rename", from, (cb) => sftp.rename(from, to, cb)),
    unlink: (path) => call<void>("unlink", path, (cb) => sftp.unlink(path, cb)),
    rmdir: (path) => call<void>("rmdir", path, (cb) => sftp.rmdir(path, cb)),
    async close() {
      sftp.end();
      client.end();
    },
  };
}
