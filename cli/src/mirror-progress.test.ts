import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa, type ResultPromise } from "execa";
import { connectBus, type NatsConnection } from "@vmbs/bus";
import { mirrorProgressSchema, subjects, type MirrorProgress } from "@vmbs/contracts";
import { runOnPty, startTestNats, waitFor, type TestNats } from "@vmbs/lab";

// test lane: independent (runs the CLI and `vmbs mirror-service` with rsync, never libvirt)

/*
 * Issue 17.5 with a real `vmbs mirror-service` process and rsync: `vmbs mirror` on a terminal draws each sync's
 * progress (bytes rsync has gone through of those its quick check copies, and the rate) between the sync's event
 * lines; for scripts (no terminal, or --json) it prints the same JSON outcome lines as before, and no progress.
 */

const vmbs = fileURLToPath(new URL("./main.js", import.meta.url));
const host = "mirrorbar";
const domain = "web";
const MiB = 1024 * 1024;
/** The chain's data file: at RSYNC_ARGS' 4 MiB/s, rsync takes some 6 s over it, three progress periods. */
const dataBytes = 24 * MiB;
/** A drawn bar's figures: `web  8.0 MiB of 24.0 MiB · 4.0 MiB/s  ████░░ 33%`. */
const bar = /[\d.]+ (B|KiB|MiB) of 24\.0 MiB · [\d.]+ (B|KiB|MiB)\/s/;

describe("vmbs mirror progress (real mirror service, rsync to a local target)", { timeout: 300_000 }, () => {
  let nats: TestNats;
  let dir: string;
  let env: Record<string, string>;
  let service: ResultPromise | undefined;
  let nc: NatsConnection;
  const progress: MirrorProgress[] = [];
  const chain = () => join(env.LOCAL_BACKUP_PATH!, domain);
  const checkpoints: string[] = [];
  /**
   * The files an agent's backup adds or rewrites (a data file, the checkpoint list, the checkpoint's XML); returns
   * their bytes: what rsync's quick check copies at the next sync, nothing else having changed.
   */
  const backUp = async (): Promise<number> => {
    const name = `virtnbdbackup.${checkpoints.length}`;
    const file = checkpoints.length === 0 ? "vda.full.data" : `vda.inc.${name}.data`;
    checkpoints.push(name);
    const cpt = JSON.stringify(checkpoints);
    const xml = `<domaincheckpoint><name>${name}</name></domaincheckpoint>`;
    await writeFile(join(chain(), file), randomBytes(dataBytes));
    await writeFile(join(chain(), `${domain}.cpt`), cpt);
    await writeFile(join(chain(), "checkpoints", `${name}.xml`), xml);
    return dataBytes + cpt.length + xml.length;
  };

  before(async () => {
    nats = await startTestNats();
    dir = await mkdtemp(join(tmpdir(), "vmbs-mirror-bar-"));
    env = {
      ...process.env,
      NATS_URL: nats.url,
      HOST_ID: host,
      LOCAL_BACKUP_PATH: join(dir, "backups"),
      RSYNC_BACKUP_PATH: join(dir, "mirror"),
      // A slow link, as an offsite copy has: the bar has time to be drawn whatever this machine's disk speed.
      RSYNC_ARGS: "-a --bwlimit=4096",
      VMBS_STATE_DIR: join(dir, "state"),
      NO_COLOR: "1",
    } as Record<string, string>;
    // A chain folder as the agent leaves it (the mirror reads files, never libvirt).
    await mkdir(join(chain(), "checkpoints"), { recursive: true });
    await mkdir(env.RSYNC_BACKUP_PATH!);
    await backUp();
    const setup = await execa("node", [vmbs, "bus", "setup", "--hosts", host], { env, reject: false, timeout: 60_000 });
    assert.equal(setup.exitCode, 0, setup.stderr);
    nc = await connectBus(nats.url, "test-mirror-progress");
    const sub = nc.subscribe(subjects.progress.mirror(host));
    void (async () => {
      for await (const m of sub) progress.push(mirrorProgressSchema.parse(m.json()));
    })();
    service = execa("node", [vmbs, "mirror-service"], { env, reject: false, forceKillAfterDelay: false });
    // Its catch-up at start copies the chain once: done when the copy is whole.
    const local = await stat(join(chain(), "vda.full.data"));
    await waitFor(async () => (await stat(join(env.RSYNC_BACKUP_PATH!, domain, "vda.full.data")).catch(() => undefined))?.mtimeMs === local.mtimeMs, {
      timeoutMs: 120_000,
      intervalMs: 200,
      what: "the mirror's catch-up copy",
    });
  });
  after(async () => {
    service?.kill("SIGTERM");
    await service;
    await nc?.close();
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("on a terminal: the sync's lines and a bar with bytes done, the bytes to copy and the rate", async () => {
    const toCopy = await backUp();
    const before = progress.length;
    const r = await runOnPty("node", [vmbs, "mirror", "--domain", domain, "--timeout", "120"], env, [[bar, ""]]);
    assert.equal(r.exitCode, 0, r.out);
    assert.match(r.out, new RegExp(`mirror started  ${domain}  to `), r.out);
    // The figures, then the bar (a terminal narrower than the line cuts its end: the percentage may be gone).
    assert.match(r.out, new RegExp(`${domain}  ${bar.source}  [█░]+`), r.out);
    assert.match(r.out, new RegExp(`mirror completed  ${domain}  to [^·]+ · [\\d.]+ MiB sent`), r.out);
    assert.doesNotMatch(r.out, /"type":/, "no JSON on a terminal");

    const ours = progress.slice(before);
    assert.ok(ours.length > 0 && ours.every((p) => p.requestId !== undefined && p.domain === domain && p.target === env.RSYNC_BACKUP_PATH), JSON.stringify(ours));
    // Only what the backup added or rewrote differs from the copy: that is what rsync goes through, and counts.
    assert.ok(ours.every((p) => p.bytesTotal === toCopy && p.bytesDone <= toCopy), `${toCopy} ${JSON.stringify(ours)}`);
    assert.ok(ours.some((p) => p.bytesDone > 0 && p.rate > 0), JSON.stringify(ours));
  });

  it("for scripts: the JSON outcome line alone, with or without a terminal", async () => {
    await backUp();
    const piped = await execa("node", [vmbs, "mirror", "--domain", domain, "--timeout", "120"], { env, reject: false, timeout: 180_000 });
    assert.equal(piped.exitCode, 0, piped.stderr);
    const lines = piped.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(lines.map((l) => l.type), ["completed"], piped.stdout);
    assert.ok(lines.every((l) => !("bytesDone" in l)), piped.stdout);

    await backUp();
    const tty = await runOnPty("node", [vmbs, "mirror", "--domain", domain, "--json", "--timeout", "120"], env, []);
    assert.equal(tty.exitCode, 0, tty.out);
    const ttyLines = tty.out.trim().split(/\r?\n/).filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(ttyLines.map((l) => l.type), ["completed"], tty.out);
    assert.doesNotMatch(tty.out, bar, "no bar with --json");
  });
});
