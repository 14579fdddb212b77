import { exitStatus } from "./exit-reasons.js";
import { SERVICE_NODE_FLAGS } from "./node-flags.js";

/** What {@link renderServiceUnit} writes into the unit: absolute paths only. */
export interface ServiceUnitPaths {
  /** The node binary the service runs on (the one `vmbs install-service` ran on). */
  node: string;
  /** cli/dist/main.js of this installation. */
  main: string;
  /** The service's configuration (VARIABLE="value" lines), written by {@link renderEnvironmentFile}. */
  environmentFile: string;
}

/** The name systemd knows the service by. */
export const serviceUnitName = "vm-babysitter.service";

/** Paths are written into the unit as they are: systemd would expand `%` and `$`, and split at spaces. */
const plainPath = /^\/[A-Za-z0-9._+@/-]*$/;

export class UnitPathError extends Error {}

/**
 * The systemd unit of `vmbs start` on a host without Docker. Exit statuses 78 (configuration) and 73 (backup folder)
 * need a person, so they stop the restarts; every other failure (NATS or libvirt not there yet, a crash) restarts.
 */
export function renderServiceUnit(paths: ServiceUnitPaths): string {
  for (const [what, path] of Object.entries(paths)) {
    if (!plainPath.test(path)) {
      throw new UnitPathError(`the ${what} path ${JSON.stringify(path)} is not a plain absolute path (letters, digits, . _ + @ - /): the unit cannot name it unquoted — install from a folder without spaces or special characters`);
    }
  }
  return `# Written by \`vmbs install-service\`. Configuration: ${paths.environmentFile} (see the README's Configuration).
[Unit]
Description=VM-Babysitter: scheduled, self-healing backups of libvirt VMs (vmbs start)
# The agent connects to libvirtd at start-up; a remote NATS_URL needs the network.
After=network-online.target libvirtd.service
Wants=network-online.target

[Service]
Type=simple
EnvironmentFile=${paths.environmentFile}
ExecStart=${paths.node} ${SERVICE_NODE_FLAGS.join(" ")} ${paths.main} start
Restart=on-failure
RestartSec=10s
# ${exitStatus.config}: invalid configuration, ${exitStatus.backupPath}: LOCAL_BACKUP_PATH missing or refused — a restart would only repeat it.
RestartPreventExitStatus=${exitStatus.config} ${exitStatus.backupPath}
# SIGTERM to vmbs alone: it lets a running virtnbdbackup end its libvirt job, then stops its own nats-server and
# redis-server. Signalled at once by systemd, they would die under the services still using them.
KillMode=mixed
TimeoutStopSec=2min

[Install]
WantedBy=multi-user.target
`;
}

export class EnvironmentValueError extends Error {}

/**
 * The environment file of the unit: each given variable as `NAME="value"`. Inside double quotes systemd (like a
 * shell) takes \\ " $ and ` literally only when escaped; a newline cannot be written at all.
 */
export function renderEnvironmentFile(variables: Record<string, string>): string {
  const lines = Object.entries(variables).map(([name, value]) => {
    if (/[\n\r]/.test(value)) throw new EnvironmentValueError(`${name} holds a line break, which an environment file cannot carry`);
    return `${name}="${value.replace(/[\\"$`]/g, (c) => `\\${c}`)}"`;
  });
  return [
    "# VM-Babysitter's configuration for vm-babysitter.service, one VARIABLE=\"value\" per line (see the README's",
    "# Configuration); written by `vmbs install-service` from the variables set when it ran. Private: it may hold secrets.",
    ...lines,
    "",
  ].join("\n");
}
