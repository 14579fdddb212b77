import { macPolicySchema, replicatePlanReplySchema, type MacPolicy, type ReplicatePlanReply } from "@vmbs/contracts";
import type { NatsConnection } from "@vmbs/bus";
import { connectAsOperator } from "../operator-client.js";
import { printReply } from "../reply-lines.js";
import { askText, select } from "./restore-prompts.js";
import { chooseDomain, confirm, restoreAsker, runAndPrint, type Ask } from "./restore-client.js";

export interface ReplicateCommandOptions {
  /** Asked on a terminal when missing. */
  domain?: string;
  as?: string;
  host?: string;
  /** Target libvirt URI; default the host's LIBVIRT_URI. */
  to?: string;
  mac?: string;
  diskDir?: string;
  noCopy?: boolean;
  yes?: boolean;
  /** Only print what the replication would do; nothing changes. */
  plan?: boolean;
  timeoutSec: number;
  /** The replies as JSON lines, also on a terminal. */
  json: boolean;
}

interface Request {
  domain: string;
  as: string;
  to?: string;
  mac?: MacPolicy | MacPolicy[];
  diskDir?: string;
  copyDisks?: boolean;
}

const planOf = async (ask: Ask, request: Request): Promise<ReplicatePlanReply> => {
  const { ok, json } = await ask("replicate-plan", { ...request, consent: true }, 120_000);
  if (!ok) throw new Error((json as { error: string }).error);
  return replicatePlanReplySchema.parse(json);
};

/** True when the run would shut the source down: it is not shut off and its disks are copied. */
const needsShutdown = (plan: ReplicatePlanReply, request: Request): boolean => plan.state !== "shut off" && request.copyDisks !== false;

/**
 * `vmbs replicate`: copies a domain of HOST as a new domain onto a libvirt connection (this host's or another one's)
 * through the host's restore service, and prints its reply as JSON; steps go to stderr. On a terminal, what the
 * options leave open is chosen with arrow keys and the replication confirmed. A running source is shut down for
 * the copy only with consent: asked on a terminal, `--yes` in a script, refused (exit 1) otherwise. Exit 0 done,
 * 1 refused, failed or not confirmed, 2 bad usage.
 */
export async function replicateCommand(o: ReplicateCommandOptions): Promise<number> {
  const usage = (line: string): number => (process.stderr.write(`vmbs replicate: ${line}\n`), 2);
  if (o.mac !== undefined && !macPolicySchema.safeParse(o.mac).success) return usage("--mac must be keep or random");
  if (o.diskDir !== undefined && !o.diskDir.startsWith("/")) return usage("--disk-dir must be an absolute path");
  const terminal = process.stdin.isTTY === true && process.stderr.isTTY === true;
  const interactive = terminal && (o.domain === undefined || o.as === undefined);
  if (!interactive && (o.domain === undefined || o.as === undefined)) return usage("--domain and --as are required (or run it on a terminal to choose)");

  const connected = await connectAsOperator("replicate", o.host);
  if (typeof connected === "number") return connected;
  const { host, nc } = connected;
  const ask = restoreAsker(nc, host);
  try {
    let request: Request = {
      domain: o.domain ?? "",
      as: o.as ?? "",
      ...(o.to ? { to: o.to } : {}),
      ...(o.mac ? { mac: o.mac as MacPolicy } : {}),
      ...(o.diskDir ? { diskDir: o.diskDir } : {}),
      ...(o.noCopy ? { copyDisks: false } : {}),
    };
    let consent = o.yes === true;
    if (interactive) {
      const chosen = await choose(o, request, host, ask, nc);
      if (!chosen) {
        process.stderr.write("vmbs replicate: not confirmed, nothing changed\n");
        return 1;
      }
      request = chosen;
      consent = true;
    }
    if (o.plan) {
      const plan = await ask("replicate-plan", { ...request, consent }, 120_000);
      printReply(plan.json, o.json);
      return plan.ok && !(plan.json as { refusal?: string }).refusal ? 0 : 1;
    }
    // On a terminal a person can consent to the shutdown; a script must say --yes, else the service refuses.
    if (!consent && terminal && needsShutdown(await planOf(ask, request), request)) {
      if (!(await confirm(`${request.domain} runs: shut it down for the copy (it is started again afterwards)?`))) {
        process.stderr.write("vmbs replicate: not confirmed, nothing changed\n");
        return 1;
      }
      consent = true;
    }
    return await runAndPrint(nc, host, "replicate", { ...request, consent }, o.timeoutSec * 1000, o.json);
  } catch (err) {
    process.stderr.write(`vmbs replicate: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await nc.close();
  }
}

/** The interactive choices, each only when the options left it open; undefined when not confirmed. */
async function choose(o: ReplicateCommandOptions, given: Request, host: string, ask: Ask, nc: NatsConnection): Promise<Request | undefined> {
  const domain = o.domain ?? (await chooseDomain(nc, host));
  const to =
    o.to ??
    (await select<string | undefined>("Target", [
      { label: `this host (${host}'s LIBVIRT_URI)`, value: undefined },
      { label: "another libvirt URI (qemu+ssh://root@host/system)", value: "" },
    ]));
  const target = to === "" ? await askText("Target libvirt URI", "qemu+ssh://root@host/system") : to;
  const as = o.as ?? (await askText("Name of the new domain", `${domain}-copy`));
  const copyDisks = o.noCopy ? false : await select("Disks", [{ label: "copy them (in their own format)", value: true }, { label: "keep the source's paths (shared storage)", value: false }]);
  let request: Request = { ...given, domain, as, ...(target ? { to: target } : {}), ...(copyDisks ? {} : { copyDisks: false }) };
  const first = await planOf(ask, request);
  if (!o.mac && first.nics.length > 0) {
    const macs: MacPolicy[] = [];
    for (const nic of first.nics)
      macs.push(await select(`MAC of NIC ${nic.mac ?? "(none)"}`, [{ label: "random (52:54:00, unused on the target)", value: "random" as const }, { label: "keep", value: "keep" as const }]));
    request = { ...request, mac: macs };
  }
  const plan = await planOf(ask, request);
  for (const step of plan.steps) process.stderr.write(`  ${step}\n`);
  if (plan.refusal) throw new Error(plan.refusal);
  const what = `Replicate ${domain} as ${as} on ${plan.to}${needsShutdown(plan, request) ? ` (${domain} is ${plan.state}: it is shut down for the copy and started again)` : ""}?`;
  return (await confirm(what)) ? request : undefined;
}
