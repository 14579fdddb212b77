import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa, type ResultPromise } from "execa";
import { configSchema } from "@vmbs/config";
import { fleetStatusSchema } from "@vmbs/contracts";
import { createLab, vmbsProcessEnv, waitFor, type Lab } from "@vmbs/lab";

const vmbs = fileURLToPath(new URL("./main.js", import.meta.url));
/** What `apt-get install nats-server` puts in /etc/nats-server.conf on Debian 12: no JetStream, NATS's usual port. */
const debianConfig = "host: 127.0.0.1\nport: 4222\n";

/** What a nats-server tells a client about itself (the fields the test reads). */
interface NatsInfo {
  server_id: string;
  port: number;
  jetstream?: boolean;
}

/** The INFO line a nats-server greets every client with (its port and whether JetStream is on), or undefined. */
async function serverInfo(port: number): Promise<NatsInfo | undefined> {
  return new Promise((resolve) => {
    let text = "";
    const socket: Socket = connect({ host: "127.0.0.1", port, timeout: 2_000 });
    const done = (info: NatsInfo | undefined) => {
      socket.destroy();
      resolve(info);
    };
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      text += chunk;
      const line = /^INFO (\{.*\}) *\r\n/.exec(text);
      if (line) done(JSON.parse(line[1]!) as NatsInfo);
    });
    socket.on("error", () => done(undefined));
    socket.on("timeout", () => done(undefined));
  });
}

describe("vmbs start on a host where Debian's nats-server already runs (real processes)", { timeout: 600_000 }, () => {
  let lab: Lab;
  let debianNats: ResultPromise | undefined;
  let stack: ResultPromise | undefined;
  let env: Record<string, string>;
  before(async () => {
    lab = await createLab();
    // As a user runs it: no VMBS_LOCAL_NATS_PORT, no NATS_URL, so every default applies.
    const { VMBS_LOCAL_NATS_PORT: _ownPort, ...userEnv } = await vmbsProcessEnv(lab, "besidedebian");
    env = userEnv;
    assert.equal(await serverInfo(4322), undefined, "port 4322 is free (is a vmbs start with the default port running on this machine?)");
    // A host's own server already on 4222 (nats-server.service on a systemd host) is the case itself; otherwise one
    // is started with Debian's own file when the package is installed (setup.sh installs it), the same settings else.
    if ((await serverInfo(4222)) !== undefined) return;
    const config = join(await lab.tempDir("debian-nats-"), "nats-server.conf");
    await writeFile(config, existsSync("/etc/nats-server.conf") ? await readFile("/etc/nats-server.conf", "utf8") : debianConfig);
    debianNats = execa("nats-server", ["-c", config], { reject: false, forceKillAfterDelay: false });
  });
  after(async () => {
    stack?.kill("SIGKILL");
    debianNats?.kill("SIGTERM");
    await debianNats;
    await lab?.cleanup();
  });

  it("comes up next to it on its own port, and a vmbs command finds it there", async () => {
    assert.equal(configSchema.shape.VMBS_LOCAL_NATS_PORT.parse(undefined), 4322);
    const debian = await waitFor(() => serverInfo(4222), { timeoutMs: 15_000, intervalMs: 100, what: "the Debian-like nats-server on 4222" });
    assert.equal(debian.port, 4222);
    if (debianNats) assert.notEqual(debian.jetstream, true, "like Debian's, the test's server runs without JetStream");

    stack = execa("node", [vmbs, "start"], { env, reject: false, forceKillAfterDelay: false, all: true });
    // Before the fix, vmbs start stopped at once (69, "could not start the local nats-server on 127.0.0.1:4222").
    let startExit: string | undefined;
    void stack.then((r) => (startExit = `vmbs start exited ${r.exitCode}: ${String(r.all).slice(-2000)}`));
    const outcome = await waitFor(
      async () => {
        if (startExit) return { startExit };
        const r = await execa("node", [vmbs, "status", "--json"], { env, reject: false, timeout: 30_000 });
        // 69 until the stack's status service answers; then 0, or 1 when something needs attention.
        if (r.exitCode !== 0 && r.exitCode !== 1) return undefined;
        const fleet = fleetStatusSchema.parse(JSON.parse(r.stdout));
        return fleet.hosts.some((h) => h.host === "besidedebian" && h.alive) ? { fleet } : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 1_000, what: "vmbs status to show this host alive" },
    );
    assert.equal(outcome.startExit, undefined, outcome.startExit);
    const own = await serverInfo(4322);
    assert.equal(own?.jetstream, true, "vmbs start's own nats-server, with JetStream, is on 4322");
    assert.equal((await serverInfo(4222))?.server_id, debian.server_id, "Debian's server still holds 4222");

    stack.kill("SIGTERM");
    const exit = await stack;
    assert.equal(exit.exitCode, 0, `graceful shutdown: ${String(exit.all).slice(-1500)}`);
    if (debianNats) assert.equal(debianNats.exitCode, null, "Debian's server is untouched");
  });
});
