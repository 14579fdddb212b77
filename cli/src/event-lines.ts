import { splitEventSubject } from "@vmbs/contracts";
import { duration, painter, shortTime, size, stdoutWantsColour } from "./human-format.js";
import { progressBars, type RunFigures } from "./progress-bars.js";

/*
 * Events as the CLI prints them: one line a person reads on a terminal, one JSON line for scripts (--json or a
 * stdout that is not a terminal).
 */

type Payload = Record<string, unknown>;

const text = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);

/** The service-specific part of a line: what a person wants to know about this kind of event. */
function details(service: string, type: string, e: Payload): string[] {
  const bytes = (v: unknown) => (num(v) !== undefined ? size(num(v)!) : undefined);
  const took = (v: unknown) => (num(v) ? `in ${duration(num(v)!)}` : undefined);
  switch (service) {
    case "backup":
      if (type === "started") return [`${text(e.level)} (asked ${text(e.requestedLevel)})`];
      if (type === "completed")
        return [`${text(e.level)} ${text(e.checkpoint)}`, `${bytes(e.bytesWritten)} ${took(e.durationMs) ?? ""}`.trim(), text(e.archivedTo) && `old chain archived to ${text(e.archivedTo)}`].filter(isText);
      break;
    case "chain":
      return [text(e.plan) && `plan ${text(e.plan)}`, text(e.step), text(e.reason)].filter(isText);
    case "mirror":
      if (type === "completed") return [`to ${text(e.target)}`, `${bytes(e.bytesTransferred)} sent ${took(e.durationMs) ?? ""}`.trim()];
      return [`to ${text(e.target)}`, type === "failed" ? `attempt ${num(e.attempt)}` : undefined, text(e.reason)].filter(isText);
    case "drill":
      if (type === "completed" && Array.isArray(e.chains)) return [`${e.chains.length} chain(s) restore`, took(e.durationMs)].filter(isText);
      break;
    case "restore":
      return [text(e.target) && `→ ${text(e.target)}`, text(e.step), text(e.reason)].filter(isText);
    case "notify":
      if (type === "digest") return [`${num(e.succeeded)} succeeded, ${num(e.failed)} failed`, bytes(e.bytesWritten)].filter(isText);
      return [text(e.target) && `to ${text(e.target)}`, text(e.reason)].filter(isText);
  }
  return [text(e.reason)].filter(isText);
}

function isText(v: string | undefined | false): v is string {
  return typeof v === "string" && v !== "";
}

/** Whether an event tells of something gone wrong (red), something a person must do (yellow), or good news. */
function tone(type: string): "bad" | "attention" | "good" | "plain" {
  if (type === "failed" || type === "silent") return "bad";
  if (type === "attention" || type === "stale") return "attention";
  if (type === "completed" || type === "back" || type === "checked") return "good";
  return "plain";
}

/** One line for a person: `2026-12-07 23:40:01Z  hv1  backup completed  web  full virtnbdbackup.3 · 1.2 GiB in 34 s`. */
export function describeEvent(subject: string, event: Payload, colour: boolean): string {
  const s = splitEventSubject(subject);
  const service = s?.service ?? subject;
  const type = text(event.type) ?? s?.type ?? "?";
  const host = text(event.host) ?? s?.host ?? "?";
  const p = painter(colour);
  const paint = { bad: p.red, attention: p.yellow, good: p.green, plain: (t: string) => t }[tone(type)];
  const at = text(event.at);
  const head = [at ? p.dim(shortTime(at)) : undefined, host, paint(`${service} ${type}`), text(event.domain)].filter(isText).join("  ");
  const rest = details(service, type, event);
  return rest.length > 0 ? `${head}  ${rest.join(" · ")}` : head;
}

export interface EventPrinter {
  /** Prints one event; `json` is the line scripts get. */
  print(subject: string, event: Payload, json: unknown): void;
  /** Shows how far run `runId` is: a bar on a terminal; nothing for scripts (their JSON lines stay the events). */
  progress(runId: string, label: string, figures: RunFigures): void;
  /** Takes the bars away; call once nothing more is printed. */
  close(): void;
}

/** Whether stdout gets lines a person reads: a terminal, and no `--json`. */
export function wantsHumanOutput(jsonOption: boolean): boolean {
  return !jsonOption && process.stdout.isTTY === true;
}

/** Human lines (and progress bars) on a terminal, JSON lines with `--json` or when stdout is not a terminal. */
export function eventPrinter(jsonOption: boolean): EventPrinter {
  if (!wantsHumanOutput(jsonOption))
    return {
      print: (_subject, _event, json) => void process.stdout.write(`${JSON.stringify(json)}\n`),
      progress: () => undefined,
      close: () => undefined,
    };
  const colour = stdoutWantsColour();
  const bars = progressBars(process.stdout);
  // Runs whose last event was printed: a progress message still on its way must not draw their bar again.
  const over = new Set<string>();
  return {
    print(subject, event) {
      // A run's last event ends its bar: the line says how it ended.
      const type = text(event.type) ?? splitEventSubject(subject)?.type;
      const runId = text(event.runId);
      if ((type === "completed" || type === "failed") && runId) {
        over.add(runId);
        bars.end(runId);
      }
      bars.line(describeEvent(subject, event, colour));
    },
    progress: (runId, label, figures) => void (over.has(runId) || bars.update(runId, label, figures)),
    close: () => bars.close(),
  };
}
