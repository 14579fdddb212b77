import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { authFileNames, BusAuthPlanError, createBusAuth } from "@vmbs/bus";
import { localAuthDir, localMaxFileStoreBytes, refreshAuthConfig, writeBusAuth } from "../bus-auth.js";
import { loadConfigOrExit } from "../runtime.js";

export interface AuthInitOptions {
  /** Comma-separated host ids; default HOST_ID. */
  hosts?: string;
  /** `HOST=ROOT` pairs: HOST's backup root is the one ROOT stamped first (it takes ROOT's chain leases). */
  shareRoot?: string[];
  /** Default `$VMBS_STATE_DIR/auth`. */
  out?: string;
  /** Replace an existing auth folder's files (every service then needs its new credential). */
  force?: boolean;
}

/** `vmbs auth init`: writes the nats-server authorization config and one nkey seed per role. Exit 0, 1 or 2. */
export async function authInitCommand(o: AuthInitOptions): Promise<number> {
  const config = loadConfigOrExit(process.env);
  const hosts = (o.hosts ?? config.HOST_ID).split(",").map((h) => h.trim()).filter(Boolean);
  const sharedRoots: Record<string, string[]> = {};
  for (const pair of o.shareRoot ?? []) {
    const [host, root, extra] = pair.split("=");
    if (!host || !root || extra !== undefined) {
      process.stderr.write(`--share-root expects HOST=ROOT (e.g. hv2=hv1), got ${JSON.stringify(pair)}\n`);
      return 2;
    }
    (sharedRoots[host] ??= []).push(root);
  }
  let generated;
  try {
    generated = createBusAuth({ hosts, sharedRoots });
  } catch (err) {
    if (!(err instanceof BusAuthPlanError)) throw err;
    process.stderr.write(`vmbs auth init: ${err.message}\n`);
    return 2;
  }
  const dir = resolve(o.out ?? localAuthDir(config));
  const serverConfig = join(dir, authFileNames.serverConfig);
  if (existsSync(serverConfig) && !o.force) {
    process.stderr.write(`vmbs auth init: ${serverConfig} exists; pass --force to replace every credential in ${dir}\n`);
    return 1;
  }
  await writeBusAuth(dir, generated, localMaxFileStoreBytes(config));
  process.stdout.write(
    [
      `wrote ${serverConfig} and ${generated.credentials.length} credentials:`,
      ...generated.credentials.map((c) => `  ${join(dir, authFileNames.seed(c.id))}`),
      "",
      "nats-server:  nats-server -c " + join(dir, authFileNames.natsServerConfig) + " -js -sd <store dir>   (the disk budget + auth.conf; vmbs start does this when NATS_URL is unset)",
      "each service: NATS_NKEY_SEED=<its .nk file>, e.g. the agent of host hv1 uses agent-hv1.nk; vmbs backup uses operator.nk",
      "set-up:       NATS_NKEY_SEED=<dir>/operator.nk vmbs bus setup --hosts <the hosts>   (streams, buckets, durables; vmbs start does it for its host)",
      "",
    ].join("\n"),
  );
  return 0;
}

/** `vmbs auth refresh`: the auth folder's config with this version's permissions, same users and keys. Exit 0, 1. */
export async function authRefreshCommand(o: Pick<AuthInitOptions, "out">): Promise<number> {
  const config = loadConfigOrExit(process.env);
  const dir = resolve(o.out ?? localAuthDir(config));
  try {
    const changed = await refreshAuthConfig(dir);
    process.stdout.write(changed ? `rewrote ${join(dir, authFileNames.serverConfig)} with this version's permissions; reload nats-server (nats-server --signal reload)\n` : `${join(dir, authFileNames.serverConfig)} is current\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`vmbs auth refresh: ${(err as Error).message}\n`);
    return 1;
  }
}
