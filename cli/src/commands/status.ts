import { fleetStatusSchema, isHostToken, subjects, type DomainStatus, type FleetStatus, type FleetStatusRequest } from "@vmbs/contracts";
import { describeAge } from "@vmbs/status";
import { connectAsOperator } from "../operator-client.js";
import { exitStatus } from "../exit-reasons.js";
import { painter, shortTime, size, stdoutWantsColour, type Painter } from "../human-format.js";
import Table from "cli-table3";
import { wantsHumanOutput } from "../event-lines.js";

/** A table without lines: columns two spaces apart, as `ls -l` or `docker ps` print them. */
const borderless = Object.fromEntries(
  ["top", "top-mid", "top-left", "top-right", "bottom", "bottom-mid", "bottom-left", "bottom-right", "left", "left-mid", "mid", "mid-mid", "right", "right-mid"].map((k) => [k, ""]),
) as Record<string, string>;
borderless.middle = "  ";

export interface StatusCommandOptions {
  host?: string;
  domain?: string;
  json: boolean;
  timeoutSec: number;
}

/** The fleet as a table a person reads: one line per domain, what needs attention below it. */
export function renderFleetTable(status: FleetStatus, colour: boolean): string {
  const p = painter(colour);
  const now = Date.parse(status.at);
  const header = ["HOST", "DOMAIN", "LAST GOOD BACKUP", "AGE", "LEVEL", "SIZE", "CHAIN", "MIRROR", "LAST DRILL"];
  const rows: Array<{ cells: string[]; paint: (s: string) => string; attention: string[] }> = [];
  for (const h of status.hosts) {
    if (h.domains.length === 0) rows.push({ cells: [h.host, "(no domains)", "", "", "", "", "", "", ""], paint: h.alive ? p.dim : p.red, attention: h.alive ? [] : ["host silent"] });
    for (const d of h.domains) {
      const b = d.lastBackup;
      const age = (iso: string): string => describeAge(now - Date.parse(iso));
      rows.push({
        cells: [
          h.host,
          d.domain + (d.scheduled ? "" : " (not scheduled)"),
          b ? shortTime(b.at) : "never",
          b ? age(b.at) : "",
          b?.level ?? "",
          b ? size(b.bytesWritten) : "",
          String(d.chainLength),
          d.mirror ? `${d.mirror.state}${d.mirror.lastSyncAt ? ` ${age(d.mirror.lastSyncAt)} ago` : ""}` : "-",
          d.lastDrill ? `${d.lastDrill.ok ? "ok" : "FAILED"} ${age(d.lastDrill.at)} ago` : "-",
        ],
        paint: verdictPaint(h.alive, d, p),
        attention: d.attention,
      });
    }
  }
  const table = new Table({ head: header.map((h) => p.bold(h)), chars: borderless, style: { head: [], border: [], "padding-left": 0, "padding-right": 0 } });
  for (const r of rows) table.push(r.cells.map((c) => r.paint(c)));
  // One line per row (cells never wrap): what needs attention goes under its row, outside the columns.
  const [head = "", ...lines] = table.toString().split("\n").map((l) => l.trimEnd());
  const out = [head, ...lines.flatMap((l, i) => [l, ...rows[i]!.attention.map((a) => p.yellow(`    ! ${a}`))])];
  if (status.hosts.length === 0) out.push(p.dim("no hosts have reported yet"));
  return `${out.join("\n")}\n`;
}

function verdictPaint(alive: boolean, d: DomainStatus, p: Painter): (s: string) => string {
  if (!alive || d.rpo.breached || (d.lastFailure && (!d.lastBackup || d.lastFailure.at > d.lastBackup.at))) return p.red;
  if (d.attention.length > 0) return p.yellow;
  return d.lastBackup ? p.green : p.dim;
}

/**
 * `vmbs status`: asks the status service (`vmbs.svc.status.fleet`) and prints its reply as a table on a terminal, or
 * as it came with --json or when stdout is not a terminal. Exit 0 when nothing needs attention, 1 when something does, 2 bad usage, 69 no status service.
 */
export async function statusCommand(o: StatusCommandOptions): Promise<number> {
  if (o.host !== undefined && !isHostToken(o.host)) {
    process.stderr.write(`--host must be a host id of 1-64 characters A-Z a-z 0-9 _ - (got ${JSON.stringify(o.host)})\n`);
    return 2;
  }
  const client = await connectAsOperator("status", undefined);
  if (typeof client === "number") return client;
  const { nc } = client;
  const request: FleetStatusRequest = { ...(o.host ? { host: o.host } : {}), ...(o.domain ? { domain: o.domain } : {}) };
  try {
    // A fleet too big for one message comes in parts: each names the last host it holds in `next`.
    let status: FleetStatus | undefined;
    let text = "";
    let parts = 0;
    for (let after: string | undefined; ; ) {
      parts++;
      const reply = await nc.request(subjects.svc.statusEndpoint("fleet"), JSON.stringify({ ...request, ...(after ? { after } : {}) }), { timeout: o.timeoutSec * 1000 });
      const error = reply.headers?.get("Nats-Service-Error");
      if (error) {
        process.stderr.write(`vmbs status: ${error}\n`);
        return reply.headers?.get("Nats-Service-Error-Code") === "400" ? 2 : 1;
      }
      const part = fleetStatusSchema.parse(reply.json());
      text = reply.string();
      status = status ? { at: status.at, hosts: [...status.hosts, ...part.hosts] } : { at: part.at, hosts: part.hosts };
      if (!part.next || part.hosts.length === 0) break;
      after = part.next;
    }
    // --json prints a reply in one part as the service sent it, byte for byte; the parts of a bigger one joined.
    if (!wantsHumanOutput(o.json)) process.stdout.write(`${parts === 1 ? text : JSON.stringify(status)}\n`);
    else process.stdout.write(renderFleetTable(status, stdoutWantsColour()));
    const attention = status.hosts.some((h) => !h.alive || h.domains.some((d) => d.attention.length > 0));
    return attention ? 1 : 0;
  } catch (err) {
    const message = (err as Error).message;
    if (/no responders|timeout/i.test(message) || (err as { code?: string }).code === "503") {
      process.stderr.write(`vmbs status: no status service answered on ${subjects.svc.statusEndpoint("fleet")} (is vmbs start or vmbs status-service running?)\n`);
      return exitStatus.natsUnavailable;
    }
    process.stderr.write(`vmbs status: ${message}\n`);
    return 1;
  } finally {
    await nc.close();
  }
}
