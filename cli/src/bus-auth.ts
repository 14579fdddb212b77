import { existsSync } from "node:fs";
import { chmod, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { authFileNames, createBusAuth, refreshServerConfig, splitNatsUrl, type BusAuth, type GeneratedBusAuth } from "@vmbs/bus";
import { renderServerConfig } from "@vmbs/nats-server";
import type { Config } from "@vmbs/config";
import { VmbsError, roleId, roleInboxPrefix, type BusRole } from "@vmbs/contracts";

/** A credential setting that cannot be used; the message names the setting and the fix. */
export class BusCredentialsError extends VmbsError {
  constructor(message: string, options?: ErrorOptions) {
    super("misconfigured", message, options);
  }
}

/** Where `vmbs auth init` writes by default and where `vmbs start` looks for an auth config. */
export function localAuthDir(config: Pick<Config, "VMBS_STATE_DIR">): string {
  return join(config.VMBS_STATE_DIR, "auth");
}

/** JetStream's disk budget of a nats-server of ours (VMBS_LOCAL_NATS_MAX_STORE_MB). */
export function localMaxFileStoreBytes(config: Pick<Config, "VMBS_LOCAL_NATS_MAX_STORE_MB">): number {
  return config.VMBS_LOCAL_NATS_MAX_STORE_MB * 1024 * 1024;
}

/** True when `dir` holds a server config written by `vmbs auth init`. */
export function hasAuthConfig(dir: string): boolean {
  return existsSync(join(dir, authFileNames.serverConfig));
}

/**
 * Writes a generated auth folder: the server config and one seed per role, private (mode 0700 / 0600). The server
 * config is written last and renamed into place, so a folder with a config always holds its seeds.
 */
export async function writeBusAuth(dir: string, generated: GeneratedBusAuth, maxFileStoreBytes: number): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  // Seeds are secrets; the config only holds public keys but tells who may do what.
  const write = async (path: string, text: string) => {
    await writeFile(path, text, { mode: 0o600 });
    await chmod(path, 0o600);
  };
  for (const c of generated.credentials) await write(join(dir, authFileNames.seed(c.id)), `${c.seed}\n`);
  await write(join(dir, authFileNames.natsServerConfig), renderServerConfig(maxFileStoreBytes, authFileNames.serverConfig));
  const config = join(dir, authFileNames.serverConfig);
  await write(`${config}.new`, generated.serverConfig);
  await rename(`${config}.new`, config);
}

/**
 * Rewrites `dir`'s server config with this version's permissions for the same users and keys (an older version's
 * roles may lack what the services now do, or allow what is now refused). True when it changed.
 */
export async function refreshAuthConfig(dir: string): Promise<boolean> {
  const path = join(dir, authFileNames.serverConfig);
  const old = await readFile(path, "utf8").catch((err: NodeJS.ErrnoException) => {
    throw new BusCredentialsError(`cannot read ${path} (${err.code ?? err.message}): run vmbs auth init first`, { cause: err });
  });
  let fresh: string;
  try {
    fresh = refreshServerConfig(old);
  } catch (err) {
    throw new BusCredentialsError(`${path}: ${(err as Error).message} (not written by vmbs auth init? write a new one with vmbs auth init --force)`, { cause: err });
  }
  if (fresh === old) return false;
  await writeFile(`${path}.new`, fresh, { mode: 0o600 });
  await rename(`${path}.new`, path);
  return true;
}

/** What {@link ensureLocalAuth} found or did for the nats-server `vmbs start` runs itself. */
export type LocalAuthState = "generated" | "existing" | "refreshed" | "insecure" | "not-local";

/**
 * The local nats-server is never open by default: on the first `vmbs start` without NATS_URL the credentials of
 * this host (as `vmbs auth init` would write them) are generated into the auth folder, and every client on this
 * machine uses them from there. VMBS_INSECURE_BUS=yes skips that (an open bus, told at every start).
 * `backupRootId`: the id in LOCAL_BACKUP_PATH's marker, when this process uses the backup root.
 */
export async function ensureLocalAuth(config: Config, backupRootId?: string): Promise<LocalAuthState> {
  if (config.NATS_URL) return "not-local";
  const dir = localAuthDir(config);
  if (hasAuthConfig(dir)) return (await refreshAuthConfig(dir)) ? "refreshed" : "existing";
  if (config.VMBS_INSECURE_BUS) return "insecure";
  // A backup root first used under another host id keys its chain leases with that id: this host takes those too.
  const sharedRoots = backupRootId && backupRootId !== config.HOST_ID ? { [config.HOST_ID]: [backupRootId] } : undefined;
  await writeBusAuth(dir, createBusAuth({ hosts: [config.HOST_ID], sharedRoots }), localMaxFileStoreBytes(config));
  return "generated";
}

/**
 * The auth folder credentials come from, when it applies: NATS_URL unset (the nats-server `vmbs start` runs), no
 * NATS_* credential set, and `vmbs auth init` wrote a config there. Undefined otherwise.
 */
export function localAuthInUse(config: Config): string | undefined {
  const explicit = config.NATS_URL || config.NATS_CREDS || config.NATS_NKEY_SEED || config.NATS_USER || config.NATS_TOKEN;
  const dir = localAuthDir(config);
  return !explicit && hasAuthConfig(dir) ? dir : undefined;
}

/** The credentials of `role`: from the local auth folder when it applies (see {@link localAuthInUse}), else the NATS_* settings. */
export function credentialsOf(config: Config, role: BusRole): Promise<BusAuth> {
  const dir = localAuthInUse(config);
  return dir ? readRoleSeed(dir, role) : readBusAuth(config, role);
}

async function readSetting(name: string, path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    throw new BusCredentialsError(`${name}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); fix the path or unset ${name}`, { cause: err });
  }
}

function checkSeed(name: string, path: string, seed: string): string {
  const trimmed = seed.trim();
  if (!/^SU[A-Z2-7]{56}$/.test(trimmed)) throw new BusCredentialsError(`${name}: ${path} does not hold an nkey user seed (a line starting with SU)`);
  return trimmed;
}

/**
 * The credentials of `role` from the NATS_* settings, files read now so that a missing file stops start-up with
 * one clear line. The role only sets the inbox prefix (its permissions allow replies there and nowhere else).
 */
async function readBusAuth(config: Config, role: BusRole): Promise<BusAuth> {
  const url = config.NATS_URL ? splitNatsUrl(config.NATS_URL) : undefined;
  const kinds = [
    config.NATS_CREDS && "NATS_CREDS",
    config.NATS_NKEY_SEED && "NATS_NKEY_SEED",
    (config.NATS_USER || config.NATS_PASSWORD) && "NATS_USER/NATS_PASSWORD",
    config.NATS_TOKEN && "NATS_TOKEN",
    (url?.user !== undefined || url?.token !== undefined) && "credentials in NATS_URL",
  ].filter((k): k is string => Boolean(k));
  if (kinds.length > 1) throw new BusCredentialsError(`${kinds.join(" and ")} are set: set only one kind of NATS credentials`);
  if (config.NATS_PASSWORD && !config.NATS_USER) throw new BusCredentialsError("NATS_PASSWORD is set without NATS_USER: set both");
  if ((config.NATS_TLS_CERT === undefined) !== (config.NATS_TLS_KEY === undefined))
    throw new BusCredentialsError("NATS_TLS_CERT and NATS_TLS_KEY go together: set both (client certificate and its key) or neither");

  const auth: BusAuth = { inboxPrefix: roleInboxPrefix(role) };
  if (config.NATS_CREDS) {
    auth.creds = await readSetting("NATS_CREDS", config.NATS_CREDS);
    if (!auth.creds.includes("BEGIN NATS USER JWT")) throw new BusCredentialsError(`NATS_CREDS: ${config.NATS_CREDS} is not a NATS .creds file (no user JWT in it)`);
  }
  if (config.NATS_NKEY_SEED) auth.nkeySeed = checkSeed("NATS_NKEY_SEED", config.NATS_NKEY_SEED, await readSetting("NATS_NKEY_SEED", config.NATS_NKEY_SEED));
  if (config.NATS_USER) Object.assign(auth, { user: config.NATS_USER, password: config.NATS_PASSWORD ?? "" });
  if (config.NATS_TOKEN) auth.token = config.NATS_TOKEN;
  if (config.NATS_TLS_CA || config.NATS_TLS_CERT) {
    auth.tls = {};
    if (config.NATS_TLS_CA) auth.tls.ca = await readSetting("NATS_TLS_CA", config.NATS_TLS_CA);
    if (config.NATS_TLS_CERT) auth.tls.cert = await readSetting("NATS_TLS_CERT", config.NATS_TLS_CERT);
    if (config.NATS_TLS_KEY) auth.tls.key = await readSetting("NATS_TLS_KEY", config.NATS_TLS_KEY);
  }
  return auth;
}

/** The credentials of `role` from a folder written by `vmbs auth init`. */
async function readRoleSeed(dir: string, role: BusRole): Promise<BusAuth> {
  const path = join(dir, authFileNames.seed(roleId(role)));
  if (!existsSync(path))
    throw new BusCredentialsError(`${path} is missing: the auth folder ${dir} has no credential for ${roleId(role)} (run vmbs auth init --force with this host in --hosts)`);
  return { nkeySeed: checkSeed("auth folder", path, await readSetting("auth folder", path)), inboxPrefix: roleInboxPrefix(role) };
}
