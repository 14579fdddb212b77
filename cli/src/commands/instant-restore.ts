import { isHostToken } from "@vmbs/contracts";
import { connectOperatorBus } from "../operator-client.js";
import { loadConfigOrExit } from "../runtime.js";
import { confirm, runAndPrint } from "./restore-client.js";

export interface InstantRestoreCommandOptions {
  domain?: string;
  set?: string;
  /** "latest" or a 0-based index into the set's checkpoints. */
  checkpoint?: string;
  as?: string;
  targetDir?: string;
  /** The instant VM to finish, or to abandon. */
  finish?: string;
  abandon?: string;
  host?: string;
  yes?: boolean;
  timeoutSec: number;
  json: boolean;
}

/**
 * `vmbs instant-restore`: asks a host's restore service (vmbs.svc.restore.<host>.instant, .instant-finish,
 * .instant-abandon) and prints its reply; each step event is printed on stderr meanwhile. A finish or an abandon
 * changes a running domain: confirmed on a terminal, `--yes` otherwise. Exit 0 done, 1 refused, failed or not
 * confirmed, 2 bad usage.
 */
export async function instantRestoreCommand(o: InstantRestoreCommandOptions): Promise<number> {
  const config = loadConfigOrExit(process.env);
  const host = o.host ?? config.HOST_ID;
  const usage = (line: string): number => (process.stderr.write(`vmbs instant-restore: ${line}\n`), 2);
  if (!isHostToken(host)) return usage(`--host must be a host id of 1-64 characters A-Z a-z 0-9 _ - (got ${JSON.stringify(host)})`);
  const ending = o.finish ?? o.abandon;
  if (o.finish !== undefined && o.abandon !== undefined) return usage("give one of --finish NAME and --abandon NAME");
  if (ending !== undefined && [o.domain, o.as, o.set, o.checkpoint, o.targetDir].some((v) => v !== undefined))
    return usage(`--${o.finish !== undefined ? "finish" : "abandon"} takes only the instant VM's name (and --host, --yes)`);
  if (ending === undefined && (o.domain === undefined || o.as === undefined)) return usage("--domain and --as are required (or --finish NAME / --abandon NAME)");
  if (o.checkpoint !== undefined && o.checkpoint !== "latest" && !/^\d+$/.test(o.checkpoint)) return usage("--checkpoint must be a number from 0 or latest");
  const terminal = process.stdin.isTTY === true && process.stderr.isTTY === true;
  if (ending !== undefined && !o.yes && !terminal) {
    const what = o.finish !== undefined ? `moves ${ending} onto local images while it runs` : `stops ${ending} and removes it with everything it wrote`;
    process.stderr.write(`vmbs instant-restore: --${o.finish !== undefined ? "finish" : "abandon"} ${what}; without a terminal it needs --yes\n`);
    return 1;
  }

  const nc = await connectOperatorBus("instant-restore", config);
  if (typeof nc === "number") return nc;
  try {
    if (ending !== undefined) {
      const question = o.finish !== undefined ? `Copy ${ending} onto local images on ${host} while it runs, and stop serving it from the backup?` : `Stop ${ending} on ${host} and remove it and everything it wrote?`;
      if (!o.yes && !(await confirm(question))) {
        process.stderr.write("vmbs instant-restore: not confirmed, nothing changed\n");
        return 1;
      }
      return await runAndPrint(nc, host, o.finish !== undefined ? "instant-finish" : "instant-abandon", { domain: ending, consent: true }, o.timeoutSec * 1000, o.json);
    }
    const request = {
      domain: o.domain!,
      as: o.as!,
      ...(o.set ? { set: o.set } : {}),
      ...(o.checkpoint !== undefined && o.checkpoint !== "latest" ? { checkpoint: Number(o.checkpoint) } : {}),
      ...(o.targetDir ? { targetDir: o.targetDir } : {}),
    };
    return await runAndPrint(nc, host, "instant", request, o.timeoutSec * 1000, o.json);
  } catch (err) {
    process.stderr.write(`vmbs instant-restore: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await nc.close();
  }
}
