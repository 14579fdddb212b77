import type { NatsConnection } from "@vmbs/bus";
import { isHostToken, restoreCheckpointsReplySchema, restoreSetsReplySchema } from "@vmbs/contracts";
import { connectOperatorBus } from "../operator-client.js";
import { printReply } from "../reply-lines.js";
import { loadConfigOrExit } from "../runtime.js";
import { askText, select } from "./restore-prompts.js";
import { chooseDomain, confirm, restoreAsker, runAndPrint, type Ask } from "./restore-client.js";

export interface RestoreCommandOptions {
  /** Asked on a terminal when missing. */
  domain?: string;
  host?: string;
  from?: string;
  set?: string;
  /** "latest" or a 0-based index into the set's checkpoints. */
  checkpoint?: string;
  disk?: string;
  as?: string;
  inPlace?: boolean;
  yes?: boolean;
  /** Only list the sets and the chosen set's checkpoints. */
  list?: boolean;
  /** Only print what the restore would do (the service's plan); nothing changes. */
  plan?: boolean;
  timeoutSec: number;
  /** The replies as JSON lines, also on a terminal. */
  json: boolean;
}

const mib = (bytes: number): string => `${(bytes / 1048576).toFixed(1)} MiB`;

/**
 * `vmbs restore`: asks a host's restore service (vmbs.svc.restore.<host>.*) and prints its reply as JSON; each
 * step event is printed on stderr meanwhile. On a terminal, whatever the options leave open (domain, set,
 * checkpoint, target, disks) is chosen with arrow-key menus, and the restore is confirmed. Exit 0 done, 1 refused,
 * failed or not confirmed, 2 bad usage.
 */
export async function restoreCommand(o: RestoreCommandOptions): Promise<number> {
  const config = loadConfigOrExit(process.env);
  const host = o.host ?? config.HOST_ID;
  const usage = (line: string): number => (process.stderr.write(`vmbs restore: ${line}\n`), 2);
  if (!isHostToken(host)) return usage(`--host must be a host id of 1-64 characters A-Z a-z 0-9 _ - (got ${JSON.stringify(host)})`);
  if (o.checkpoint !== undefined && o.checkpoint !== "latest" && !/^\d+$/.test(o.checkpoint)) return usage("--checkpoint must be a number from 0 or latest");
  if (o.as !== undefined && o.inPlace) return usage("give exactly one of --as NEW_NAME and --in-place (or --list)");
  const terminal = process.stdin.isTTY === true && process.stderr.isTTY === true;
  const interactive = terminal && !o.list && (o.domain === undefined || (o.as === undefined && !o.inPlace));
  if (!interactive) {
    if (o.domain === undefined) return usage("--domain is required (or run it on a terminal to choose)");
    if (!o.list && o.as === undefined && !o.inPlace) return usage("give exactly one of --as NEW_NAME and --in-place (or --list)");
    // Changing an existing domain needs a person's consent: on a terminal it is asked, in a script --yes is it.
    if (o.inPlace && !o.yes && !o.plan && !terminal) {
      process.stderr.write(`vmbs restore: an in-place restore replaces the disks of ${o.domain}; without a terminal it needs --yes\n`);
      return 1;
    }
  }

  const nc = await connectOperatorBus("restore", config);
  if (typeof nc === "number") return nc;
  const ask = restoreAsker(nc, host);
  try {
    if (interactive) {
      const chosen = await choose(o, host, ask, nc);
      if (!chosen) {
        process.stderr.write("vmbs restore: not confirmed, nothing changed\n");
        return 1;
      }
      o = chosen;
    } else if (o.inPlace && !o.yes && !o.plan && !(await confirm(`Replace the disks of ${o.domain} on ${host} (shutting it down if it runs)?`))) {
      process.stderr.write("vmbs restore: not confirmed, nothing changed\n");
      return 1;
    }
    const scope = { domain: o.domain!, ...(o.from ? { from: o.from } : {}) };
    if (o.list) {
      const sets = await ask("sets", scope, 60_000);
      const checkpoints = sets.ok ? await ask("checkpoints", { ...scope, ...(o.set ? { set: o.set } : {}) }, 60_000) : undefined;
      printReply({ ...(sets.json as object), ...(checkpoints ? { active: checkpoints.json } : {}) }, o.json);
      return sets.ok && checkpoints?.ok ? 0 : 1;
    }
    const request = {
      ...scope,
      ...(o.set ? { set: o.set } : {}),
      ...(o.checkpoint !== undefined && o.checkpoint !== "latest" ? { checkpoint: Number(o.checkpoint) } : {}),
      ...(o.disk ? { disk: o.disk } : {}),
      ...(o.as !== undefined ? { as: o.as } : { inPlace: true, consent: o.yes === true || !o.plan }),
    };
    if (o.plan) {
      const plan = await ask("plan", request, 60_000);
      printReply(plan.json, o.json);
      return plan.ok && !(plan.json as { refusal?: string }).refusal ? 0 : 1;
    }
    return await runAndPrint(nc, host, "run", request, o.timeoutSec * 1000, o.json);
  } catch (err) {
    process.stderr.write(`vmbs restore: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await nc.close();
  }
}

/** The interactive choices, each only when the options left it open; undefined when not confirmed. */
async function choose(o: RestoreCommandOptions, host: string, ask: Ask, nc: NatsConnection): Promise<RestoreCommandOptions | undefined> {
  const reply = async <T>(r: Promise<{ ok: boolean; json: unknown }>, parse: (json: unknown) => T): Promise<T> => {
    const { ok, json } = await r;
    if (!ok) throw new Error((json as { error: string }).error);
    return parse(json);
  };
  const domain = o.domain ?? (await chooseDomain(nc, host));
  const from = o.from ? { from: o.from } : {};
  const sets = await reply(ask("sets", { domain, ...from }, 60_000), (j) => restoreSetsReplySchema.parse(j).sets);
  const set = o.set ?? (await select("Backup set", sets.map((s) => ({ label: `${s.name}  ${s.active ? "active" : "archived"}, ${s.checkpoints} checkpoints, ${mib(s.bytes)}`, value: s.name }))));
  const points = await reply(ask("checkpoints", { domain, ...from, set }, 60_000), (j) => restoreCheckpointsReplySchema.parse(j).checkpoints);
  const checkpoint =
    o.checkpoint ??
    String(await select("Checkpoint (newest first)", [...points].reverse().map((p) => ({ label: `${p.index}  ${p.name}  ${p.time ?? "?"}  ${mib(p.bytes)}`, value: p.index }))));
  const inPlace = o.inPlace ?? (o.as === undefined ? await select("Restore to", [{ label: "a new domain", value: false }, { label: `${domain} itself (replaces its disks)`, value: true }]) : false);
  const as = inPlace ? undefined : (o.as ?? (await askText("Name of the new domain", `${domain}-restored`)));
  const disks = points.find((p) => String(p.index) === checkpoint || (checkpoint === "latest" && p === points.at(-1)))?.disks ?? points[0]?.disks ?? [];
  const disk = o.disk ?? (disks.length > 1 ? await select("Disks", [{ label: "all", value: undefined }, ...disks.map((d) => ({ label: d, value: d }))]) : undefined);
  const what = `${set} checkpoint ${checkpoint}${disk ? ` disk ${disk}` : ""} ${inPlace ? `onto ${domain} (its disks are replaced)` : `as new domain ${as}`}`;
  if (!(await confirm(`Restore ${what}?`))) return undefined;
  return { ...o, domain, set, checkpoint, ...(disk ? { disk } : {}), ...(inPlace ? { inPlace: true, yes: true } : { as }) };
}
