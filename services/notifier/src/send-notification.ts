import { execa } from "execa";
import nodemailer from "nodemailer";
import { shellQuote, sshOptionsWithHostKeyPolicy } from "@vmbs/config";
import type { NotifyTarget, NotifySeverity } from "@vmbs/contracts";
import type { Notification } from "./render-event.js";
import { VmbsError } from "@vmbs/contracts";

/** Delivery to one target failed (the queue retries it); `permanent` when a retry cannot help. */
export class SendError extends VmbsError {
  constructor(message: string, options?: ErrorOptions) {
    super("failed", message, options);
  }
}

export interface SendDeps {
  /** Options of every ssh call (SSH_OPTIONS). */
  sshOptions: string[];
  /** Host of `unraid://` without a host (UNRAID_NOTIFY_HOST). */
  unraidHost: string;
  /** Per-attempt timeout. Default 20 s. */
  timeoutMs?: number;
}

export type Sender = (n: Notification, event: unknown) => Promise<void>;

const unraidScripts = ["/usr/local/emhttp/webGui/scripts/notify", "/usr/local/emhttp/plugins/dynamix/scripts/notify"];
const unraidLevel: Record<NotifySeverity, string> = { info: "normal", success: "normal", warning: "warning", failure: "alert" };
const ntfyPriority: Record<NotifySeverity, number> = { info: 2, success: 3, warning: 4, failure: 5 };

/**
 * The remote command of `unraid://`: ssh hands the remote side one command line for the user's shell, so the
 * script's arguments are quoted words; the script is the current Unraid path, else the legacy one.
 */
function unraidRemoteCommand(scripts: string[], args: string[]): string {
  const pick = scripts.map((s) => `[ -x ${shellQuote(s)} ] && exec ${shellQuote(s)} "$@"`).join("; ");
  return `set -- ${args.map(shellQuote).join(" ")}; ${pick}; echo 'notify script not found' >&2; exit 127`;
}

/** Creates the function that delivers a notification to one target. */
export function createSender(target: NotifyTarget, deps: SendDeps): Sender {
  const timeoutMs = deps.timeoutMs ?? 20_000;
  const post = async (url: string, body: unknown, headers: Record<string, string> = {}): Promise<void> => {
    let res: Response;
    try {
      res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      throw new SendError(`${target.label}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`, { cause: err });
    }
    await res.arrayBuffer().catch(() => undefined);
    if (!res.ok) throw new SendError(`${target.label}: HTTP ${res.status}`);
  };
  switch (target.kind) {
    case "json":
      return (n, event) =>
        post(target.url, { title: n.title, message: n.message, type: n.severity, event }, target.basicAuth ? { authorization: `Basic ${Buffer.from(target.basicAuth).toString("base64")}` } : {});
    case "ntfy":
      return (n) => post(target.url, { topic: target.topic, title: n.title, message: n.message, priority: ntfyPriority[n.severity], tags: [n.severity] });
    case "gotify":
      return (n) => post(`${target.url}/message`, { title: n.title, message: n.message, priority: ntfyPriority[n.severity] * 2 }, { "x-gotify-key": target.token });
    case "discord":
      return (n) => post(target.url, { username: "VM-Babysitter", content: `**${n.title}**\n${n.message}`.slice(0, 2000) });
    case "slack":
      return (n) => post(target.url, { text: `*${n.title}*\n${n.message}` });
    case "tgram":
      return (n) => post(target.url, { chat_id: target.chatId, text: `${n.title}\n\n${n.message}`.slice(0, 4096) });
    case "smtp": {
      const transport = nodemailer.createTransport({
        host: target.host,
        port: target.port,
        secure: target.secure,
        ...(target.user ? { auth: { user: target.user, pass: target.pass ?? "" } } : {}),
        connectionTimeout: timeoutMs,
        greetingTimeout: timeoutMs,
        socketTimeout: timeoutMs,
      });
      return async (n) => {
        try {
          await transport.sendMail({ from: target.from, to: target.to, subject: n.title, text: n.message });
        } catch (err) {
          throw new SendError(`${target.label}: ${(err as Error).message}`, { cause: err });
        }
      };
    }
    case "unraid":
      return async (n) => {
        const args = ["-e", "VM-Babysitter", "-s", n.title, "-d", n.message, "-i", unraidLevel[n.severity]];
        const remote = unraidRemoteCommand(target.script ? [target.script] : unraidScripts, args);
        const sshArgs = [...sshOptionsWithHostKeyPolicy(deps.sshOptions), ...(target.port ? ["-p", String(target.port)] : []), "--", `${target.user}@${target.host ?? deps.unraidHost}`, remote];
        const r = await execa("ssh", sshArgs, { reject: false, timeout: timeoutMs, stdin: "ignore" });
        if (r.exitCode !== 0) throw new SendError(`${target.label}: ssh exited ${r.exitCode ?? r.signal}: ${String(r.stderr).trim().slice(-300)}`);
      };
  }
}
