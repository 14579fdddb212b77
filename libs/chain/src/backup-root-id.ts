import { readFile, writeFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { join } from "node:path";
import { VmbsError, backupRootMarker, backupRootMarkerSchema, isHostToken, parsePayload } from "@vmbs/contracts";

/** The backup root's marker exists but does not hold a valid id; it is never replaced silently. */
export class BackupRootMarkerError extends VmbsError {
  constructor(
    readonly path: string,
    detail: string,
    options?: ErrorOptions,
  ) {
    super(
      "misconfigured",
      `${path}: ${detail}. This file names the backup root for the chain locks of every agent using it; ` +
        `restore it (content {"id":"<host id>"}) or, if no other agent uses this root, delete it so the next start writes a new one`,
      options,
    );
  }
}

/**
 * The id of a backup root: the scope of its chain leases (chainLeaseKey(rootId, domain)), so two agents — on
 * any hosts — writing into the same `<root>/<domain>` folder take the same lease. The first agent to use the
 * root writes its own HOST_ID into `<root>/.vm-babysitter-root` with an exclusive create; every later one
 * (this host or another) reads it. A corrupt marker throws {@link BackupRootMarkerError}.
 */
export async function backupRootId(root: string, hostId: string): Promise<string> {
  if (!isHostToken(hostId)) throw new TypeError(`invalid host id ${JSON.stringify(hostId)}`);
  const path = join(root, backupRootMarker);
  try {
    // wx = O_CREAT|O_EXCL: of two agents starting at once, exactly one writes; the other reads its id.
    await writeFile(path, JSON.stringify({ id: hostId }), { flag: "wx", mode: 0o644 });
    return hostId;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  }
  const text = await readMarker(path);
  const parsed = parsePayload(backupRootMarkerSchema, text.trim() === "" ? "null" : text);
  if (!parsed.ok) throw new BackupRootMarkerError(path, parsed.reason.replace(/^invalid payload: /, "invalid content: "));
  return parsed.value.id;
}

/** How long an empty marker may be another agent's exclusive create that has not written its id yet. */
const MARKER_WRITE_GRACE_MS = 2_000;

/** The marker's text; an empty one is read again for a moment, since its creator writes right after creating it. */
async function readMarker(path: string): Promise<string> {
  const deadline = Date.now() + MARKER_WRITE_GRACE_MS;
  for (;;) {
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (err) {
      throw new BackupRootMarkerError(path, `cannot be read (${(err as Error).message})`, { cause: err });
    }
    if (text !== "" || Date.now() >= deadline) return text;
    await sleep(50);
  }
}
