// The container set-up as a user meets it: both compose files under docker-compose (Debian's v1, installed by
// scripts/setup.sh with VMBS_INSTALL_COMPOSE=1), and the Unraid template against the settings the code reads.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { DOMParser } from "@xmldom/xmldom";
import { execa } from "execa";
import { configSchema, loadConfig } from "@vmbs/config";

const repo = fileURLToPath(new URL("../../", import.meta.url));
const composeFiles = ["docker-compose.yml", "docker-compose.fleet.yml"];
const hostIdMessage = "set HOST_ID to this host's id";

const compose = (file: string, env: Record<string, string>, ...args: string[]) =>
  execa("docker-compose", ["-f", file, ...args], { cwd: repo, env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env }, extendEnv: false, reject: false, timeout: 60_000 });

const composeMissing = (await execa("docker-compose", ["version"], { reject: false, timeout: 30_000 })).failed
  ? "docker-compose is not installed (scripts/setup.sh installs Debian's with VMBS_INSTALL_COMPOSE=1)"
  : false;

/** Each service's block of `docker-compose config` (its canonical YAML: services at two spaces, their keys at four). */
function serviceBlocks(yaml: string): Map<string, string> {
  const services = /^services:\n((?: {2}.*\n|\n)*)/m.exec(yaml)?.[1] ?? "";
  const blocks = new Map<string, string>();
  for (const m of services.matchAll(/^ {2}([\w-]+):\n((?: {4}.*\n)*)/gm)) blocks.set(m[1]!, m[2]!);
  return blocks;
}

describe("docker-compose files", { skip: composeMissing }, () => {
  for (const file of composeFiles) {
    it(`${file}: valid without a profile and with each of its profiles`, async () => {
      const env = { HOST_ID: "hv1" };
      const profiles = (await compose(file, env, "config", "--profiles")).stdout.split("\n").filter(Boolean);
      assert.ok(profiles.length > 0, "the file has profiles");
      for (const args of [[], ...profiles.map((p) => ["--profile", p])]) {
        const r = await compose(file, env, ...args, "config", "-q");
        assert.equal(r.exitCode, 0, `${file} ${args.join(" ")}: ${r.stderr}`);
      }
    });

    it(`${file}: an empty or missing HOST_ID stops compose with what to set`, async () => {
      for (const env of [{ HOST_ID: "" }, {}] as Record<string, string>[]) {
        const r = await compose(file, env, "config", "-q");
        assert.notEqual(r.exitCode, 0);
        assert.ok(r.stderr.includes(hostIdMessage), r.stderr);
      }
    });

    it(`${file}: every long-running service has a health check; agent and mirror keep VMBS_STATE_DIR in a volume`, async () => {
      const blocks = serviceBlocks((await compose(file, { HOST_ID: "hv1" }, "config")).stdout);
      assert.ok(blocks.has("backup-agent") && blocks.has("mirror"), [...blocks.keys()].join(" "));
      for (const [name, block] of blocks) {
        if (/^ {4}restart: "?no"?$/m.test(block)) continue; // a one-shot (bus-setup)
        assert.match(block, /^ {4}healthcheck:\n {6}interval:/m, `${name} has a health check`);
      }
      assert.match(blocks.get("backup-agent")!, /- healthcheck\n {6}- --agent\n/);
      for (const name of ["backup-agent", "mirror"]) assert.match(blocks.get(name)!, /- vmbs-state:\/var\/lib\/vm-babysitter:rw\n/, name);
    });

    it(`${file}: Debian's nvram and firmware folders replace Unraid's when set`, async () => {
      const unraid = serviceBlocks((await compose(file, { HOST_ID: "hv1" }, "config")).stdout).get("backup-agent")!;
      assert.match(unraid, /- \/etc\/libvirt\/qemu\/nvram:\/etc\/libvirt\/qemu\/nvram:rw\n/);
      assert.match(unraid, /- \/usr\/share\/qemu:\/usr\/share\/qemu:ro\n/);
      const debianEnv = { HOST_ID: "hv1", VM_NVRAM_PATH: "/var/lib/libvirt/qemu/nvram", VM_FIRMWARE_PATH: "/usr/share/OVMF" };
      const debian = serviceBlocks((await compose(file, debianEnv, "config")).stdout).get("backup-agent")!;
      assert.match(debian, /- \/var\/lib\/libvirt\/qemu\/nvram:\/var\/lib\/libvirt\/qemu\/nvram:rw\n/);
      assert.match(debian, /- \/usr\/share\/OVMF:\/usr\/share\/OVMF:ro\n/);
    });
  }
});

describe("Unraid template (unraid/vm-babysitter.xml)", () => {
  const configs = async () => {
    const doc = new DOMParser().parseFromString(await readFile(`${repo}/unraid/vm-babysitter.xml`, "utf8"), "text/xml");
    const nodes = Array.from({ length: doc.getElementsByTagName("Config").length }, (_, i) => doc.getElementsByTagName("Config").item(i)!);
    return {
      postArgs: doc.getElementsByTagName("PostArgs").item(0)?.textContent,
      entries: nodes.map((n) => ({ type: n.getAttribute("Type"), target: n.getAttribute("Target") ?? "", defaultValue: n.getAttribute("Default") ?? "", value: n.textContent ?? "" })),
    };
  };

  it("runs `vmbs start`, and each variable is a setting the code reads, with the value shown as its default", async () => {
    const { postArgs, entries } = await configs();
    assert.equal(postArgs, "start");
    const variables = entries.filter((e) => e.type === "Variable");
    const known = Object.keys(configSchema.shape);
    for (const v of variables) {
      assert.ok(known.includes(v.target), `${v.target} is a setting of libs/config`);
      assert.equal(v.value, v.defaultValue, `${v.target}: the value shown is its default`);
    }
    for (const seedSetting of ["BACKUP_SCHEDULE", "LOCAL_BACKUP_PATH", "MAX_BACKUPS_PER_CHAIN", "RSYNC_BACKUP_PATH", "VM_IGNORED_LIST", "VM_AUTOSTART_LIST", "VM_ALLOW_POWERCYCLE", "UNRAID_NOTIFY_HOST", "SSH_OPTIONS", "TZ"])
      assert.ok(variables.some((v) => v.target === seedSetting), `the seed's ${seedSetting} is in the template`);
  });

  it("its defaults (every variable passed, empty ones too) load as the config's own defaults", async () => {
    const variables = (await configs()).entries.filter((e) => e.type === "Variable");
    const env = { ...Object.fromEntries(variables.map((v) => [v.target, v.value])), HOST_ID: "tower1" };
    const fromTemplate = loadConfig(env) as Record<string, unknown>;
    const bare = loadConfig({ HOST_ID: "tower1" }) as Record<string, unknown>;
    for (const v of variables) assert.deepEqual(fromTemplate[v.target], bare[v.target], v.target);
  });

  it("mounts the backup folder at LOCAL_BACKUP_PATH and the state folder at VMBS_STATE_DIR's default", async () => {
    const { entries } = await configs();
    const paths = entries.filter((e) => e.type === "Path").map((e) => e.target);
    const defaults = loadConfig({ HOST_ID: "tower1" });
    for (const target of [defaults.LOCAL_BACKUP_PATH, defaults.VMBS_STATE_DIR, "/run/libvirt", "/var/tmp", "/logs"]) assert.ok(paths.includes(target), target);
  });
});
