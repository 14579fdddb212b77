import { VmbsError } from "./vmbs-error.js";
import { createHash } from "node:crypto";

/** How urgent a notification is; targets send what is at least their `severity` (default warning). */
export const notifySeverities = ["info", "success", "warning", "failure"] as const;
export type NotifySeverity = (typeof notifySeverities)[number];

/** Which events a target gets: all `filters` must match (empty list = any). */
export interface NotifyFilter {
  minSeverity: NotifySeverity;
  /** Event types (`failed`) or service.type (`backup.failed`), globs allowed. */
  events: string[];
  hosts: string[];
  domains: string[];
  /** Gets the summary of each scheduled run (`digest=yes|no`, default yes). */
  digest: boolean;
}

interface TargetBase {
  /** Stable id derived from the URL (it does not reveal it): job ids and queue names. */
  id: string;
  /** The URL as it may be logged: credentials and tokens replaced by `***`. */
  label: string;
  filter: NotifyFilter;
}

export type NotifyTarget = TargetBase &
  (
    | { kind: "json"; url: string; /** `user:password` of the URL, sent as HTTP basic auth. */ basicAuth?: string }
    | { kind: "smtp"; host: string; port: number; secure: boolean; user?: string; pass?: string; from: string; to: string[] }
    | { kind: "unraid"; user: string; host?: string; port?: number; script?: string }
    | { kind: "ntfy"; url: string; topic: string }
    | { kind: "gotify"; url: string; token: string }
    | { kind: "discord"; url: string }
    | { kind: "slack"; url: string }
    | { kind: "tgram"; url: string; chatId: string }
  );

export class NotifyUrlError extends VmbsError {
  constructor(message: string) {
    super("misconfigured", message);
  }
}

/** Query options of ours, removed before a URL is used. */
const ownOptions = new Set(["digest", "severity", "events", "hosts", "domains", "api", "script", "from", "to"]);

/** The URL as it may be shown: only scheme and host (tokens live in paths and queries too). */
export function notifyUrlLabel(text: string): string {
  const m = /^([a-z][a-z0-9+.-]*):\/\/(?:[^/@\s]*@)?([^/?#\s]*)/i.exec(text);
  if (!m) return "(not a URL)";
  const [, scheme, host] = m;
  const tokenInHost = scheme === "discord" || scheme === "slack" || scheme === "tgram";
  return `${scheme}://${tokenInHost ? "***" : host}${text.length > m[0].length ? "/***" : ""}`;
}

/** Parses one NOTIFY_URLS entry; throws NotifyUrlError with a message that never holds the URL's secrets. */
export function parseNotifyUrl(text: string): NotifyTarget {
  const label = notifyUrlLabel(text);
  const fail = (why: string): never => {
    throw new NotifyUrlError(`${label}: ${why}`);
  };
  // A Telegram bot token holds a colon, which URL parsing takes for a port: read it from the raw text.
  const tgram = /^tgram:\/\/([^/?#]+)\/([^/?#]+)\/?(\?.*)?$/i.exec(text);
  let u: URL;
  try {
    u = new URL(tgram ? `tgram://telegram/${tgram[2]}${tgram[3] ?? ""}` : text);
  } catch {
    return fail("not a URL (expected e.g. json://host/path, smtp://host?from=a@b&to=c@d, unraid://)");
  }
  const scheme = u.protocol.slice(0, -1);
  const q = u.searchParams;
  const list = (name: string): string[] => (q.get(name) ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  const severity = q.get("severity") ?? "warning";
  if (!(notifySeverities as readonly string[]).includes(severity)) fail(`severity must be one of ${notifySeverities.join(", ")}`);
  const digest = (q.get("digest") ?? "yes").toLowerCase();
  if (!["yes", "no", "true", "false", "on", "off", "1", "0"].includes(digest)) fail("digest must be yes or no");
  const base: TargetBase = {
    id: `${scheme}-${createHash("sha256").update(text).digest("hex").slice(0, 16)}`,
    label,
    filter: { minSeverity: severity as NotifySeverity, events: list("events"), hosts: list("hosts"), domains: list("domains"), digest: ["yes", "true", "on", "1"].includes(digest) },
  };
  const rest = new URLSearchParams([...q].filter(([k]) => !ownOptions.has(k)));
  const restQuery = rest.size > 0 ? `?${rest}` : "";
  const hostPort = u.port ? `${u.hostname}:${u.port}` : u.hostname;
  const segments = decodeURIComponent(u.pathname).split("/").filter(Boolean);
  const needHost = (): void => void (u.hostname === "" && fail("a host is required"));
  const api = (fallback: string): string => {
    const a = q.get("api") ?? fallback;
    if (!/^https?:\/\/[^/\s]+/.test(a)) fail("api= must be an http(s) URL");
    return a.replace(/\/+$/, "");
  };
  switch (scheme) {
    case "json":
    case "jsons":
      needHost();
      return {
        ...base,
        kind: "json",
        url: `${scheme === "jsons" ? "https" : "http"}://${hostPort}${u.pathname}${restQuery}`,
        ...(u.username ? { basicAuth: `${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}` } : {}),
      };
    case "smtp":
    case "smtps": {
      needHost();
      const from = q.get("from") ?? "";
      const to = list("to");
      if (!/^[^@\s]+@[^@\s]+$/.test(from)) fail("from=ADDRESS is required");
      if (to.length === 0 || !to.every((a) => /^[^@\s]+@[^@\s]+$/.test(a))) fail("to=ADDRESS[,ADDRESS…] is required");
      const secure = scheme === "smtps";
      return {
        ...base,
        kind: "smtp",
        host: u.hostname,
        port: u.port ? Number(u.port) : secure ? 465 : 25,
        secure,
        ...(u.username ? { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) } : {}),
        from,
        to,
      };
    }
    case "unraid": {
      const script = q.get("script") ?? undefined;
      if (script !== undefined && !script.startsWith("/")) fail("script= must be an absolute path");
      return {
        ...base,
        kind: "unraid",
        user: u.username ? decodeURIComponent(u.username) : "root",
        ...(u.hostname ? { host: u.hostname } : {}),
        ...(u.port ? { port: Number(u.port) } : {}),
        ...(script ? { script } : {}),
      };
    }
    case "ntfy":
    case "ntfys":
      needHost();
      if (segments.length !== 1) fail("expected ntfy://host[:port]/topic");
      return { ...base, kind: "ntfy", url: `${scheme === "ntfys" ? "https" : "http"}://${hostPort}`, topic: segments[0]! };
    case "gotify":
    case "gotifys":
      needHost();
      if (segments.length < 1) fail("expected gotify://host[:port][/path]/token");
      return {
        ...base,
        kind: "gotify",
        url: `${scheme === "gotifys" ? "https" : "http"}://${hostPort}${segments.slice(0, -1).map((s) => `/${s}`).join("")}`,
        token: segments.at(-1)!,
      };
    case "discord":
      if (!u.hostname || segments.length !== 1) fail("expected discord://webhook_id/webhook_token");
      return { ...base, kind: "discord", url: `${api("https://discord.com/api/webhooks")}/${u.hostname}/${segments[0]}` };
    case "slack":
      if (!u.hostname || segments.length !== 2) fail("expected slack://TokenA/TokenB/TokenC (the parts of the incoming webhook URL)");
      return { ...base, kind: "slack", url: `${api("https://hooks.slack.com/services")}/${u.hostname.toUpperCase()}/${segments.join("/")}` };
    case "tgram": {
      if (!tgram) return fail("expected tgram://bot_token/chat_id");
      return { ...base, kind: "tgram", url: `${api("https://api.telegram.org")}/bot${tgram[1]}/sendMessage`, chatId: decodeURIComponent(tgram[2]!) };
    }
    default:
      return fail(`unknown scheme ${scheme}:// (json, jsons, smtp, smtps, unraid, ntfy, ntfys, gotify, gotifys, discord, slack, tgram)`);
  }
}
