import { shellQuote } from "@vmbs/config";
import { splitEventSubject, type NotifyDigestEvent, type NotifySeverity } from "@vmbs/contracts";

/** A notification about one event, ready for any target. */
export interface Notification {
  service: string;
  host: string;
  /** The event type (`failed`, `attention`, `completed`, …). */
  type: string;
  domain?: string;
  severity: NotifySeverity;
  /** Short: fits a phone's lock screen and an e-mail subject. */
  title: string;
  /** What happened, why, and what to do. */
  message: string;
}

type EventRecord = Record<string, unknown>;

// A host back from silence is told wherever its silence was (targets send warnings and up by default).
const severityOf = (type: string): NotifySeverity =>
  type === "failed" || type === "stale" || type === "silent" ? "failure" : type === "attention" || type === "back" ? "warning" : type === "completed" ? "success" : "info";

const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);

/** How the status service's alarms (`vmbs.evt.fleet.<host>.<type>`) read in a title. */
const fleetAlarmTitles = new Map([
  ["stale", "no recent backup"],
  ["silent", "agent stopped heart-beating"],
  ["back", "agent heart-beats again"],
]);

/** What a person should do next, by (service, type). */
function advice(service: string, type: string, e: EventRecord): string | undefined {
  if (service === "backup" && type === "failed")
    return `the agent has checked the chain and the next scheduled backup tries again; to retry now: vmbs backup --domain ${shellQuote(String(e.domain ?? ""))}`;
  if (service === "chain" && type === "attention") return "VM-Babysitter cannot fix this alone: act as the reason says; the next backup checks the chain again.";
  if (service === "restore" && type === "attention")
    return `an instant VM needs you: act as the reason says, then move it onto local disks with vmbs instant-restore --finish ${shellQuote(String(e.target ?? ""))} --yes (or remove it with --abandon).`;
  if (service === "chain" && type === "failed") return "the chain could not be checked or repaired; see the agent's log (the next backup tries again).";
  if (service === "notify" && type === "failed") return "check that target's address, credentials and reachability.";
  if (service === "fleet" && type === "stale") return "check the domain's recent failed events (vmbs status) and that its host's agent runs; back it up now with vmbs backup.";
  if (service === "fleet" && type === "silent") return "no backups run on this host: check that it is up and that vmbs start (or vmbs agent) runs there.";
  return undefined;
}

/**
 * Turns an event (`vmbs.evt.<service>.<host>.<type>` and its JSON payload) into a notification, or undefined
 * when the subject is not an event subject.
 */
export function renderEvent(subject: string, event: EventRecord): Notification | undefined {
  const s = splitEventSubject(subject);
  if (!s) return undefined;
  const { service, host, type } = s;
  if (service === "notify" && type === "digest") return renderDigest(host, event as unknown as NotifyDigestEvent);
  const domain = str(event.domain);
  const reason = str(event.reason);
  const what =
    service === "notify" ? `notification to ${String(event.target)} ${type}` : service === "fleet" ? (fleetAlarmTitles.get(type) ?? `fleet ${type}`) : `${service} ${type}`;
  const subjectLine = `${domain ? `${domain} on ${host}` : host}: ${what}`;
  const lines = [
    `Host: ${host}`,
    ...(domain ? [`Domain: ${domain}`] : []),
    `Event: ${service} ${type}${str(event.at) ? ` at ${String(event.at)}` : ""}`,
    ...(reason ? [`Reason: ${reason}`] : []),
    ...(typeof event.bytesWritten === "number" && type === "completed" ? [`Written: ${event.bytesWritten} bytes in ${Math.round(Number(event.durationMs ?? 0) / 1000)} s`] : []),
    ...(str(event.folder) ? [`Folder: ${String(event.folder)}`] : []),
  ];
  const next = advice(service, type, event);
  if (next) lines.push("", `What to do: ${next}`);
  return { service, host, type, ...(domain ? { domain } : {}), severity: severityOf(type), title: `VM-Babysitter: ${subjectLine}`, message: lines.join("\n") };
}

const mib = (bytes: number): string => `${(bytes / 1_048_576).toFixed(1)} MiB`;
const secs = (ms: number): string => `${Math.round(ms / 1000)} s`;

/** One message for a whole scheduled run of a host. */
function renderDigest(host: string, d: NotifyDigestEvent): Notification {
  const total = d.succeeded + d.failed;
  const lines = [
    `Host: ${host}`,
    `Run: ${d.requestId.replace(/^schedule:/, "")}`,
    `Succeeded: ${d.succeeded} of ${total}, failed: ${d.failed}; ${mib(d.bytesWritten)} written in ${secs(d.durationMs)}`,
    "",
    ...d.domains.map((x) => (x.outcome === "completed" ? `ok      ${x.domain}: ${mib(x.bytesWritten)}, ${secs(x.durationMs)}` : `FAILED  ${x.domain}: ${x.reason ?? "no reason given"}`)),
    ...(d.attention.length > 0 ? ["", "Needs you:", ...d.attention.map((a) => `- ${a.domain ? `${a.domain}: ` : ""}${a.reason}`)] : []),
  ];
  return {
    service: "notify",
    host,
    type: "digest",
    severity: d.failed > 0 ? "failure" : d.attention.length > 0 ? "warning" : "success",
    title: `VM-Babysitter: ${host}: ${d.failed > 0 ? `${d.failed} of ${total} backups failed` : `all ${total} backups done`}`,
    message: lines.join("\n"),
  };
}
