/**
 * What an incremental mirror sync sends, next to a bare rsync of the same folder (issue 8, acceptance 2).
 *
 *   node bench/dist/mirror-transfer.js      (or `npm run bench:mirror`)
 *
 * A real sshd on loopback, a lab domain (256 MiB disk): a full backup (64 MiB written) through the agent, mirrored
 * by the mirror service over ssh, and the same folder copied by a bare `rsync -a -e ssh` to a second folder; then
 * 32 MiB more, an incremental, and both again. Prints the bytes each sent for the incremental (rsync's "Total
 * bytes sent") against the new checkpoint's data file; the target is at most 1.05 × the data bytes. Exits 0
 * whatever the ratio.
 */
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { Writable } from "node:stream";
import { execa } from "execa";
import { loadConfig } from "@vmbs/config";
import { mirrorEventSchema, subjects, type MirrorEvent } from "@vmbs/contracts";
import { createLogger } from "@vmbs/logger";
import { createAgentHarness, startTestSshd, waitFor } from "@vmbs/lab";
import { startMirror, statsBytes } from "@vmbs/mirror";

const HOST = "benchmirror";
const MiB = 1024 * 1024;
const TARGET = 1.05;

async function main(): Promise<void> {
  const h = await createAgentHarness(HOST);
  const sshd = await startTestSshd();
  const mirrorRoot = await h.lab.tempDir("mirror-");
  const bareRoot = await h.lab.tempDir("bare-");
  const events: MirrorEvent[] = [];
  const sub = h.nc.subscribe(subjects.evt.serviceAll("mirror", HOST));
  void (async () => {
    for await (const m of sub) events.push(mirrorEventSchema.parse(m.json()));
  })();
  await h.startAgent();
  const config = loadConfig({ LOCAL_BACKUP_PATH: h.backupRoot, HOST_ID: HOST, VMBS_STATE_DIR: h.stateDir, RSYNC_BACKUP_PATH: `root@127.0.0.1:${mirrorRoot}`, SSH_OPTIONS: sshd.sshOptionsLine });
  const logger = createLogger({ name: "bench-mirror", level: "silent", stream: new Writable({ write: (_c, _e, cb) => cb() }) });
  const mirror = await startMirror({ config, nc: h.nc, logger });
  try {
    const dom = await h.lab.createDomain({ sizeMiB: 256 });
    const folder = join(h.backupRoot, dom.name);
    const bare = async (): Promise<number> => {
      const r = await execa("rsync", ["-a", "--stats", "-s", "-e", `ssh ${sshd.sshOptionsLine}`, `${folder}/`, `root@127.0.0.1:${bareRoot}/${dom.name}/`], { timeout: 600_000 });
      return statsBytes(r.stdout, "Total bytes sent") ?? NaN;
    };
    const round = async (requestId: string, offsetMiB: number, lengthMiB: number): Promise<{ mirror: number; bare: number }> => {
      await h.lab.writeGuest(dom.name, { offset: offsetMiB * MiB, length: lengthMiB * MiB, pattern: 0x40 + offsetMiB });
      h.publishRaw(JSON.stringify({ domain: dom.name, requestId }));
      const done = await h.waitEvent((e) => e.requestId === requestId && e.type !== "started", 600_000);
      if (done.type !== "completed") throw new Error(`backup ${requestId} failed: ${JSON.stringify(done)}`);
      const m = await waitFor(() => events.find((e) => e.requestId === requestId && e.type !== "started"), { timeoutMs: 600_000, what: "the mirror sync" });
      if (m.type !== "completed") throw new Error(`mirror sync failed: ${m.reason}`);
      return { mirror: m.bytesTransferred, bare: await bare() };
    };
    await round("full", 0, 64);
    const inc = await round("inc", 128, 32);
    const data = (await stat(join(folder, "vda.inc.virtnbdbackup.1.data"))).size;
    const line = (label: string, bytes: number) => `${label.padEnd(22)} ${String(bytes).padStart(12)} bytes  ratio ${(bytes / data).toFixed(4)}`;
    process.stdout.write(
      [
        `incremental data file   ${String(data).padStart(12)} bytes (32 MiB written)`,
        line("mirror service sent", inc.mirror),
        line("bare rsync -a sent", inc.bare),
        `target: mirror ratio <= ${TARGET} -> ${inc.mirror / data <= TARGET ? "met" : "NOT met"}`,
        "",
      ].join("\n"),
    );
  } finally {
    await mirror.stop();
    sub.unsubscribe();
    await sshd.close();
    await h.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
