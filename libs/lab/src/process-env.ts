import { createServer } from "node:net";
import { ignoredListExcept } from "./ignore-list.js";
import type { Lab } from "./lab.js";

/** A loopback TCP port free at the time of asking (for a nats-server a test starts through `vmbs start`). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * The environment of a `vmbs` process run by a test as a user would run it: private backup, state and log
 * folders, its own local nats-server and status page ports, and every domain but the lab's own ignored (other domains on this
 * libvirtd are not the test's to back up, neither those that exist now nor those defined later).
 */
export async function vmbsProcessEnv(lab: Lab, hostId: string): Promise<Record<string, string>> {
  const state = await lab.tempDir("state-");
  return {
    LOCAL_BACKUP_PATH: await lab.tempDir("backups-"),
    LOGFILE_PATH: `${state}/logs/vmbs.log`,
    VMBS_STATE_DIR: state,
    VMBS_LOCAL_NATS_PORT: String(await freePort()),
    // Any free port: two `vmbs start` of one test (or a user's on 9780) must not collide.
    VMBS_HTTP_LISTEN: "127.0.0.1:0",
    HOST_ID: hostId,
    VM_IGNORED_LIST: await ignoredListExcept(lab.uri),
    // Nor a domain another test file (sharing this libvirtd) creates later.
    VM_ALLOWED_LIST: lab.allowedList,
    NATS_URL: "",
  };
}
