import { existsSync } from "node:fs";
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { configSchema } from "@vmbs/config";
import { loadConfigOrExit } from "../runtime.js";
import { EnvironmentValueError, renderEnvironmentFile, renderServiceUnit, serviceUnitName, UnitPathError } from "../systemd-unit.js";

export interface InstallServiceOptions {
  /** Default /etc/systemd/system. */
  unitDir?: string;
  /** The environment file holding the configuration; default /etc/default/vm-babysitter. */
  configFile?: string;
  /** Replace an existing unit and environment file. */
  force?: boolean;
}

/**
 * `vmbs install-service`: writes the systemd unit of `vmbs start` and its environment file (the configuration
 * variables set now), for a host without Docker. Exit 0 written, 1 a file exists, 2 a path the unit cannot hold,
 * 78 an invalid configuration (the service would refuse it too).
 */
export async function installServiceCommand(o: InstallServiceOptions): Promise<number> {
  loadConfigOrExit(process.env);
  const unitFile = join(resolve(o.unitDir ?? "/etc/systemd/system"), serviceUnitName);
  const envFile = resolve(o.configFile ?? "/etc/default/vm-babysitter");
  const variables: Record<string, string> = {};
  for (const name of Object.keys(configSchema.shape)) {
    const value = process.env[name];
    if (value !== undefined) variables[name] = value;
  }
  let unit: string;
  let environment: string;
  try {
    unit = renderServiceUnit({ node: process.execPath, main: fileURLToPath(new URL("../main.js", import.meta.url)), environmentFile: envFile });
    environment = renderEnvironmentFile(variables);
  } catch (err) {
    if (!(err instanceof UnitPathError || err instanceof EnvironmentValueError)) throw err;
    process.stderr.write(`vmbs install-service: ${err.message}\n`);
    return 2;
  }
  const existing = [unitFile, envFile].filter((f) => existsSync(f));
  if (existing.length > 0 && !o.force) {
    process.stderr.write(`vmbs install-service: ${existing.join(" and ")} exist${existing.length === 1 ? "s" : ""}; pass --force to replace ${existing.length === 1 ? "it" : "them"}\n`);
    return 1;
  }
  await mkdir(dirname(envFile), { recursive: true });
  await writeFile(envFile, environment, { mode: 0o600 });
  await chmod(envFile, 0o600);
  await mkdir(dirname(unitFile), { recursive: true });
  await writeFile(unitFile, unit);
  // The umask of vmbs (077) would leave the unit unreadable to `systemctl status` of other users; it holds no secret.
  await chmod(unitFile, 0o644);
  const names = Object.keys(variables);
  process.stdout.write(
    [
      `wrote ${unitFile} (vmbs start on ${process.execPath})`,
      `wrote ${envFile} (mode 0600): ${names.length > 0 ? names.join(" ") : "no variables set: every default applies"}`,
      "",
      "start it now and at every boot:  systemctl daemon-reload && systemctl enable --now vm-babysitter",
      "follow it:                        journalctl -u vm-babysitter -f",
      "",
    ].join("\n"),
  );
  return 0;
}
