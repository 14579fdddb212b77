import { isIP } from "node:net";
import { checkServerIdentity, type PeerCertificate } from "node:tls";
import {
  connect,
  credsAuthenticator,
  nkeyAuthenticator,
  PermissionViolationError,
  type NatsConnection,
  type NodeConnectionOptions,
} from "@nats-io/transport-node";
import { VmbsError } from "@vmbs/contracts";

export type { NatsConnection } from "@nats-io/transport-node";

/** Credentials and TLS material of one client, already read from their files (see the CLI's bus-auth). */
export interface BusAuth {
  /** Content of a `.creds` file (user JWT + nkey seed), for servers in operator/JWT mode. */
  creds?: string;
  /** An nkey user seed (`SU…`), as `vmbs auth init` writes it. */
  nkeySeed?: string;
  user?: string;
  password?: string;
  token?: string;
  /** PEM contents. `ca` alone verifies the server; `cert` + `key` also authenticate the client. */
  tls?: { ca?: string; cert?: string; key?: string };
  /** Replies to this client go to `<inboxPrefix>.…`: a least-privilege role may subscribe only there. */
  inboxPrefix?: string;
}

export class BusConnectError extends VmbsError {
  constructor(readonly url: string, options: ErrorOptions) {
    super("unavailable", `cannot connect to NATS at ${url}`, options);
  }
}

/** How long the FIRST connect may take: a wrong NATS_URL is reported at start-up instead of hanging. */
const firstConnectTimeoutMs = 5_000;

/** True for a NATS "Permissions Violation" (also when wrapped as a cause). */
export function isPermissionViolation(err: unknown): boolean {
  for (let e = err; e instanceof Error; e = e.cause) if (e instanceof PermissionViolationError) return true;
  return false;
}

/** A server URL list split from the credentials written into it (`nats://user:pass@host`, `nats://token@host`). */
export interface SplitNatsUrl {
  /** The URLs without their user part: safe to log. */
  servers: string[];
  user?: string;
  password?: string;
  token?: string;
}

/** Splits `nats://user:pass@h1:4222,nats://h2` into plain server URLs and the credentials of the first URL that has some. */
export function splitNatsUrl(url: string): SplitNatsUrl {
  const out: SplitNatsUrl = { servers: [] };
  for (const part of url.split(",").map((s) => s.trim()).filter(Boolean)) {
    const at = /^([a-z][a-z0-9+.-]*:\/\/)([^/@]*)@(.*)$/i.exec(part);
    if (!at) {
      out.servers.push(part);
      continue;
    }
    const [, scheme, userinfo, rest] = at as unknown as [string, string, string, string];
    out.servers.push(`${scheme}${rest}`);
    if (out.user !== undefined || out.token !== undefined) continue;
    const colon = userinfo.indexOf(":");
    if (colon < 0) out.token = decodeURIComponent(userinfo);
    else {
      out.user = decodeURIComponent(userinfo.slice(0, colon));
      out.password = decodeURIComponent(userinfo.slice(colon + 1));
    }
  }
  return out;
}

/**
 * nats.js sends no server name for a server given by IP address, so Node would check its certificate against
 * "localhost"; check it against the configured addresses instead (a certificate with `IP:` subject alt names).
 */
function ipIdentityCheck(servers: string[]): { checkServerIdentity?: (host: string, cert: PeerCertificate) => Error | undefined } {
  const ips = servers.map((s) => new URL(s.includes("://") ? s : `nats://${s}`).hostname.replace(/^\[|\]$/g, ""));
  if (ips.length === 0 || !ips.every((ip) => isIP(ip) !== 0)) return {};
  return {
    checkServerIdentity: (_host, cert) => {
      const errors = ips.map((ip) => checkServerIdentity(ip, cert));
      return errors.includes(undefined) ? undefined : errors[0];
    },
  };
}

/** The nats.js options of `auth` (credentials in the URL count when `auth` has none of its own). */
function connectionOptions(url: SplitNatsUrl, auth: BusAuth): NodeConnectionOptions {
  const encode = (text: string) => new TextEncoder().encode(text);
  const o: NodeConnectionOptions = { servers: url.servers };
  if (auth.creds) o.authenticator = credsAuthenticator(encode(auth.creds));
  else if (auth.nkeySeed) o.authenticator = nkeyAuthenticator(encode(auth.nkeySeed.trim()));
  else if (auth.token ?? url.token) o.token = auth.token ?? url.token;
  else if (auth.user ?? url.user) {
    o.user = auth.user ?? url.user;
    o.pass = auth.password ?? url.password;
  }
  if (auth.tls || url.servers.some((s) => s.startsWith("tls://"))) o.tls = { ...auth.tls, ...ipIdentityCheck(url.servers) };
  if (auth.inboxPrefix) o.inboxPrefix = auth.inboxPrefix;
  return o;
}

/**
 * Connects with endless reconnects, so a restarting nats-server doesn't take the services down with it.
 * Errors name the server without the credentials a URL may carry.
 */
export async function connectBus(url: string, name: string, auth: BusAuth = {}): Promise<NatsConnection> {
  const split = splitNatsUrl(url);
  try {
    return await connect({ ...connectionOptions(split, auth), name, maxReconnectAttempts: -1, reconnectTimeWait: 1000, timeout: firstConnectTimeoutMs });
  } catch (err) {
    throw new BusConnectError(split.servers.join(","), { cause: err });
  }
}
