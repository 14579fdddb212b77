#!/usr/bin/env -S node --max-semi-space-size=2
// The flag: see node-flags.ts.
import { parseArgs } from "node:util";
import { authInitCommand, authRefreshCommand } from "./commands/auth.js";
import { busSetupCommand } from "./commands/bus-setup.js";
import { healthcheckCommand, healthcheckUsage } from "./commands/healthcheck.js";
import { installServiceCommand } from "./commands/install-service.js";
import { backupCommand } from "./commands/backup.js";
import { chainCommand, chainVerbs, type ChainVerb } from "./commands/chain-command.js";
import { retentionDryRun } from "./commands/retention-dry-run.js";
import { drillCommand } from "./commands/drill.js";
import { eventsCommand } from "./commands/events.js";
import { mirrorCommand } from "./commands/mirror.js";
import { policyCommand } from "./commands/policy.js";
import { replicateCommand } from "./commands/replicate.js";
import { instantRestoreCommand } from "./commands/instant-restore.js";
import { restoreCommand } from "./commands/restore.js";
import { serve, type ServeRole } from "./commands/serve.js";
import { statusCommand } from "./commands/status.js";
import { exitStatus } from "./exit-reasons.js";
import { versionLine } from "./version.js";

const x = exitStatus;
const serveExitStatus = `Exit status: 0 stopped by SIGINT/SIGTERM, ${x.config} invalid configuration, ${x.backupPath} LOCAL_BACKUP_PATH missing or refused,
${x.natsUnavailable} NATS unreachable (or the local nats-server died), ${x.anotherAgent} another agent serves this HOST_ID, ${x.other} other failure.`;

/** How `vmbs backup` and the chain commands wait for the agent. */
const waitText = `

Waiting ends when the agent has recorded the command as done. A host without a live agent (the key <host> of
vmbs_agent_presence) is told at once and nothing is sent; an agent that goes away while the command runs ends
the wait too (the command stays queued in VMBS_CMD and runs when the agent is back).
`;

const chainVerbHelp: Record<ChainVerb, string> = {
  check: "checks each chain with the data check, and repairs it or starts a new one where it must.",
  rotate: "archives each active chain now (the next backup starts a new chain), then applies the retention.",
  retention: "applies LOCAL_BACKUP_CHAINS_TO_KEEP (and the calendar retention) to each domain's archives.",
};

const retentionDryRunHelp = `
  --dry-run         change nothing: print what retention would delete now (with the reasons), whether the active
                    chain would be archived at the next backup and what the retention after it would delete, and,
                    when the host runs a mirror (vmbs.cmd.mirror.<host> with dryRun), for each mirror target
                    whether the next sync would archive the mirror copy and which mirror archives it would delete;
                    exit 1 also when a running mirror does not answer within --timeout`;

const usage: Record<string, string> = {
  healthcheck: healthcheckUsage,
  main: `vmbs — VM-Babysitter: live, incremental, self-healing backups of libvirt VMs over NATS

Usage: vmbs <command> [options]

Commands:
  start       scheduler + backup agent + restore service + status service (+ notifier when NOTIFY_URLS is set,
              + mirror when RSYNC_BACKUP_PATH is set) in one process (starts a local nats-server when NATS_URL is
              unset); the status page and /metrics on VMBS_HTTP_LISTEN (default 127.0.0.1:9780)
  agent       the backup agent of this host only
  scheduler   the scheduler only
  notifier    the notifier only: alerts for failed and attention events to NOTIFY_URLS
  mirror-service  the mirror of this host only (needs RSYNC_BACKUP_PATH or MIRROR_RCLONE_TARGETS)
  restore-service the restore service of this host only (for hosts that run \`vmbs agent\` rather than \`vmbs start\`)
  status-service  the fleet's status service only: status model, alarms, status page and /metrics
  status      the fleet at a glance: every host and domain, last good backup, chain, mirror, drill, attention
  backup      ask a host's agent for a backup (one domain or --all) and print the outcome
  check       ask a host's agent to check (and heal) chains now
  rotate      ask a host's agent to archive chains now (the next backup starts a new chain)
  retention   ask a host's agent to apply the retention to the archives now
  drill       ask a host's restore service for a restore drill and print its verdict
  events      the event history and, with --follow, the live events
  mirror      ask a host's mirror to copy one chain (or all) now and print the outcome
  restore     restore a domain from a backup set, as a new domain or in place, through the host's restore service
  replicate   copy a domain as a new domain onto this or another libvirt host, through the host's restore service
  instant-restore  run a backup at once as a new domain (served from the chain), then --finish it onto local disks
  policy      the effective policy of each domain (VMBS_POLICY_FILE and the environment): schedule, chain, retention, ...
  auth init   generate bus credentials: a nats-server authorization config and one nkey per role
  auth refresh  rewrite an auth config with this version's permissions (same keys)
  bus setup   with the operator's credential: make the streams, buckets and durable consumers of a fleet's hosts
  healthcheck for a container's HEALTHCHECK: NATS answers (and, asked, this host's agent or the status page)
  install-service  write the systemd unit of vmbs start and its configuration (hosts without Docker)

Run "vmbs <command> --help" for a command's options, "vmbs --version" for the version. Configuration comes from environment variables (see README).`,
  start: `Usage: vmbs start\n\nRuns the scheduler, this host's backup agent, its restore service and the status service until SIGINT/SIGTERM. When NATS_URL is unset, a local\nnats-server with JetStream is started on 127.0.0.1:$VMBS_LOCAL_NATS_PORT (data in $VMBS_STATE_DIR/nats).\n${serveExitStatus}`,
  agent: `Usage: vmbs agent\n\nRuns this host's backup agent (HOST_ID) against NATS_URL until SIGINT/SIGTERM.\n${serveExitStatus}`,
  scheduler: `Usage: vmbs scheduler\n\nPublishes backup commands at BACKUP_SCHEDULE (in TZ) for every registered host, and drill commands at DRILL_SCHEDULE\n(when set), until SIGINT/SIGTERM.`,
  notifier: `Usage: vmbs notifier\n\nSends failed and attention events (and more, per target options) to every NOTIFY_URLS target through a\nRedis queue with retries, until SIGINT/SIGTERM. REDIS_URL unset: a local redis-server (data in $VMBS_STATE_DIR/redis).\nNATS_NKEY_SEED=…/notifier.nk under auth.\n${serveExitStatus} ${x.natsUnavailable} also: REDIS_URL unreachable or the local redis-server failed.`,
  "mirror-service": `Usage: vmbs mirror-service\n\nRuns this host's mirror until SIGINT/SIGTERM: copies each chain to RSYNC_BACKUP_PATH and MIRROR_RCLONE_TARGETS after\nits backups (or at RSYNC_SCHEDULE) and on vmbs.cmd.mirror.<host>.\n${serveExitStatus}`,
  "restore-service": `Usage: vmbs restore-service\n\nRuns this host's restore service (NATS micro service vmbs-restore on vmbs.svc.restore.<host>.*) until\nSIGINT/SIGTERM. NATS_NKEY_SEED=…/restore-<host>.nk under auth.\n${serveExitStatus}`,
  mirror: `Usage: vmbs mirror [--domain NAME] [--host HOST] [--timeout SECONDS] [--json]

Publishes vmbs.cmd.mirror.<host> and prints each sync's events: lines a person reads on a terminal, with a bar per
running rsync (bytes done of those to copy, and the rate; none for rclone targets), the outcome events as JSON lines
with --json or when stdout is not a terminal.
  --domain NAME     one domain's chain (default: every chain folder of that host's backup root)
  --host HOST       the host id of the mirror (default: HOST_ID, i.e. this machine)
  --timeout SEC     give up waiting after SEC seconds in all (default 3600)
  --json            JSON lines, also on a terminal
Exit status: 0 every sync completed, 1 one failed or timed out, 2 bad usage, ${x.natsUnavailable} NATS unreachable.`,
  "status-service": `Usage: vmbs status-service\n\nRuns the fleet's status service until SIGINT/SIGTERM: keeps the status of every host and domain from the events and\nheartbeats (in the vmbs_status bucket), raises vmbs.evt.fleet.<host>.silent|back|stale, answers vmbs.svc.status.fleet and\n.history (NATS micro service vmbs-status), and serves the status page and /metrics on VMBS_HTTP_LISTEN.\nNATS_NKEY_SEED=…/status.nk under auth.\n${serveExitStatus}`,
  status: `Usage: vmbs status [--host HOST] [--domain NAME] [--json] [--timeout SECONDS]

Asks the status service (vmbs.svc.status.fleet) and prints every host and domain: last good backup and its age,
level, size, chain length, mirror, last drill, and below each line what needs attention.
  --host HOST       only this host
  --domain NAME     only this domain
  --json            print the service's reply as it came (for scripts; also when stdout is not a terminal)
  --timeout SEC     wait at most SEC seconds for the reply (default 10)
Exit status: 0 nothing needs attention, 1 something does (or the request failed), 2 bad usage,
${x.natsUnavailable} no status service answered (or NATS unreachable).`,
  backup: `Usage: vmbs backup (--domain NAME | --all) [--host HOST] [--level auto|full|inc] [--timeout SECONDS] [--json]

Publishes vmbs.cmd.backup.<host> and prints the events it causes (the backups and the rotation and retention around
them): lines a person reads on a terminal, JSON lines with --json or when stdout is not a terminal.
  --domain NAME     the libvirt domain (quote names with spaces)
  --all             every scheduled domain of the host
  --host HOST       the host id of the agent (default: HOST_ID, i.e. this machine)
  --level LEVEL     auto (default): full for a new chain, inc after; full: archive the chain and start anew; inc
  --timeout SEC     give up waiting after SEC seconds in all (default 3600)
  --json            JSON lines, also on a terminal${waitText}
Exit status: 0 every backup completed, 1 one failed (or a chain needs attention) or the wait timed out, 2 bad usage,
${x.natsUnavailable} no live agent on the host (or it went away), or NATS unreachable.`,
  ...Object.fromEntries(
    chainVerbs.map((verb) => [
      verb,
      `Usage: vmbs ${verb} [--domain NAME] [--host HOST] [--timeout SECONDS] [--json]${verb === "retention" ? " [--dry-run]" : ""}

Publishes vmbs.cmd.${verb}.<host>: ${chainVerbHelp[verb]}
Prints the chain events it causes: lines on a terminal, JSON lines with --json or when stdout is not a terminal.
  --domain NAME     one domain (default: every scheduled domain of the host)
  --host HOST       the host id of the agent (default: HOST_ID, i.e. this machine)
  --timeout SEC     give up waiting after SEC seconds in all (default 3600)
  --json            JSON lines, also on a terminal${verb === "retention" ? retentionDryRunHelp : ""}${waitText}
Exit status: 0 done, 1 a step failed, a chain needs attention, or the wait timed out, 2 bad usage,
${x.natsUnavailable} no live agent on the host (or it went away), or NATS unreachable.`,
    ]),
  ),
  drill: `Usage: vmbs drill [--domain NAME] [--host HOST] [--timeout SECONDS] [--json]

Publishes vmbs.cmd.drill.<host> (taken by the host's restore service: vmbs start or vmbs restore-service) and
prints the drill's events until it completed or failed: lines on a terminal, JSON lines with --json or when
stdout is not a terminal.
  --domain NAME     one domain's chains, active and archived (default: every chain of the host's backup root)
  --host HOST       the host id (default: HOST_ID, i.e. this machine)
  --timeout SEC     give up waiting after SEC seconds in all (default 21600)
  --json            JSON lines, also on a terminal

A host whose restore service does not answer a ping (NATS micro service vmbs-restore) is told at once and nothing
is sent.

Exit status: 0 every chain restores, 1 a fault was found or the wait timed out, 2 bad usage,
${x.natsUnavailable} no restore service on the host, or NATS unreachable.`,
  events: `Usage: vmbs events [--host HOST] [--since DURATION] [--follow] [--json]

Prints the events of VMBS_EVT (backups, chain steps, mirror syncs, restores, drills, notifications, fleet alarms):
lines a person reads on a terminal, JSON lines {"subject", "seq", "event"} with --json or when stdout is not a
terminal.
  --host HOST       only this host's events (default: every host)
  --since DURATION  how far back: a number with s, m, h or d (default 24h), or all (the stream keeps 30 days)
  --follow          after the history, print each new event as it comes, until Ctrl-C
  --json            JSON lines, also on a terminal
Exit status: 0 done, 1 the stream could not be read, 2 bad usage, ${x.natsUnavailable} NATS unreachable.`,
  restore: `Usage: vmbs restore --domain NAME [--host HOST] [--from DIR] [--set NAME] [--checkpoint N|latest] [--disk DEV]
                    (--as NEW_NAME | --in-place [--yes] | --list) [--plan] [--timeout SECONDS] [--json]

Asks the restore service of HOST (vmbs.svc.restore.<host>.*) and prints its reply: lines a person reads on a
terminal, one JSON line with --json or when stdout is not a terminal; steps go to stderr, on a terminal with a bar
while the engine writes the images (bytes written of the set's data up to the checkpoint, and the rate).
On a terminal, what the options leave open (domain, set, checkpoint, target, disks) is chosen with arrow keys and
the restore is confirmed; in a script, --domain and one of --as / --in-place are required.
  --domain NAME       the domain whose backups are restored
  --host HOST         the host whose restore service and backup root are used (default: HOST_ID)
  --from DIR          a folder inside LOCAL_BACKUP_PATH holding the domain's sets, e.g. a mirror mounted there
                      (default LOCAL_BACKUP_PATH)
  --set NAME          the set: the active chain <domain> (default) or an archive <domain>.<timestamp>
  --checkpoint N      the N-th checkpoint of the set, 0 = the full backup (default latest)
  --disk DEV          only this disk (target dev, e.g. vdb)
  --as NEW_NAME       a new domain: new UUID and MACs, images <NEW_NAME>.<dev>.qcow2 next to the original's
  --in-place          onto the existing domain; a running one is shut down (VM_WAIT_TIME). Asks on a terminal,
                      needs --yes otherwise. The old images are kept until the new ones are in place; afterwards
                      libvirt's checkpoints are removed and the active chain archived (the next backup is a full)
  --list              print the sets and the checkpoints of --set (default the active chain)
  --plan              print what the restore would do and why it would be refused (exit 1 then); changes nothing
  --timeout SEC       give up waiting after SEC seconds (default 21600)
  --json              the reply as one JSON line, also on a terminal
Exit status: 0 restored (or listed), 1 refused, failed or not confirmed, 2 bad usage.`,
  replicate: `Usage: vmbs replicate --domain NAME --as NEW_NAME [--host HOST] [--to URI] [--mac keep|random] [--disk-dir DIR]
                      [--no-copy] [--yes] [--plan] [--timeout SECONDS] [--json]

Asks the restore service of HOST (vmbs.svc.restore.<host>.replicate) to copy a defined domain as a new one, and
prints its reply (lines on a terminal, one JSON line with --json or when stdout is not a terminal); steps go to stderr,
on a terminal with a bar while the disks are copied. The copy gets a new UUID, is defined on the target and never started.
On a terminal, what the options leave open (domain, target, name, MACs, disks) is chosen with arrow keys and the
replication is confirmed.
  --domain NAME       the source, a defined domain of HOST's LIBVIRT_URI
  --as NEW_NAME       the copy's name; refused if a domain of exactly that name exists on the target
  --host HOST         the host whose restore service and libvirt hold the source (default: HOST_ID)
  --to URI            the target libvirt connection (default HOST's LIBVIRT_URI): qemu:///system, qemu:///session or
                      qemu+ssh://[user@]host[:port]/system[?keyfile=…&known_hosts=…&no_verify=1] (files go over ssh,
                      plus SSH_OPTIONS); any other URI is refused
  --mac POLICY        random (default: 52:54:00:…, unused on the target) or keep, for every NIC
  --disk-dir DIR      folder of the copied images on the target: a libvirt storage pool path or a folder holding a
                      defined domain's images (default: each source image's folder); the images
                      are named <NEW_NAME>.<dev><ext> and copied in their own format (qcow2 stays qcow2, raw raw)
  --no-copy           keep the source's image paths (shared storage); the UEFI variables are still copied
  --yes               consent to shut a running source down for the copy (VM_WAIT_TIME); it is started again
                      afterwards. Asked on a terminal; without a terminal and without --yes a running source is refused
  --plan              print what the replication would do and why it would be refused (exit 1 then); changes nothing
  --timeout SEC       give up waiting after SEC seconds (default 21600)
  --json              the reply as one JSON line, also on a terminal
Exit status: 0 replicated, 1 refused, failed or not confirmed, 2 bad usage.`,
  "instant-restore": `Usage: vmbs instant-restore --domain NAME --as NEW_NAME [--set NAME] [--checkpoint N|latest]
                            [--target-dir DIR] [--host HOST] [--timeout SECONDS] [--json]
       vmbs instant-restore --finish NEW_NAME [--yes] [--host HOST] [--timeout SECONDS] [--json]
       vmbs instant-restore --abandon NEW_NAME [--yes] [--host HOST] [--json]

Instant recovery through the restore service of HOST (vmbs.svc.restore.<host>.instant, .instant-finish,
.instant-abandon). The new domain runs within seconds whatever the disk size: each disk is served read-only from
the backup chain (nbdkit) under a local qcow2 overlay that takes the writes; the backup is never written, and the
chain's lease is held (retention, rotation, mirror and backups of that chain wait) until --finish or --abandon.
Steps go to stderr; the reply to stdout (lines on a terminal, one JSON line with --json or when not a terminal).
  --domain NAME       the backed-up domain (its sets in LOCAL_BACKUP_PATH)
  --as NEW_NAME       the new domain: new UUID and MACs, started at once
  --set NAME          the active chain <domain> (default) or an archive <domain>.<timestamp>
  --checkpoint N      the N-th checkpoint of the set, 0 = the full backup (default latest)
  --target-dir DIR    folder of the overlays and, after --finish, of the images <NEW_NAME>.<dev>.qcow2: a storage
                      pool path or a defined domain's image folder (default: the folder of the original's first disk)
  --finish NEW_NAME   copy each disk onto its final image while the domain runs (blockcopy, then pivot); then the
                      exports stop, the overlays go and the lease is released
  --abandon NEW_NAME  stop and undefine the instant domain, remove its overlays, exports and any partial copy
  --yes               consent for --finish / --abandon (asked on a terminal; refused without one and without --yes)
  --timeout SEC       give up waiting after SEC seconds (default 21600)
  --json              the reply as one JSON line, also on a terminal
Exit status: 0 done, 1 refused, failed or not confirmed, 2 bad usage.`,
  auth: `Usage: vmbs auth init [--hosts HV1,HV2,...] [--share-root HOST=ROOT ...] [--out DIR] [--force]
       vmbs auth refresh [--out DIR]

Writes DIR/auth.conf (a nats-server authorization config) and one nkey seed per role, DIR/<role>.nk (mode 0600):
operator, scheduler, notifier, and per host agent-<host>, mirror-<host>, restore-<host>. Each role may do only its
part: the agent of a host consumes only that host's commands, publishes only its events and writes only its keys.
  --hosts LIST         host ids (HOST_ID) of the fleet (default: HOST_ID of this machine)
  --share-root H=R     host H backs up into the folder whose chains host R created first (a shared LOCAL_BACKUP_PATH):
                       H may also take R's chain leases. Repeat for more pairs.
  --out DIR            where to write (default $VMBS_STATE_DIR/auth, which vmbs start uses when NATS_URL is unset)
  --force              replace existing credentials (every service then needs its new .nk file)
Give a service its credential with NATS_NKEY_SEED=DIR/<role>.nk. Exit status: 0 written, 1 exists, 2 bad usage.
refresh: rewrites DIR/auth.conf with this version's permissions for the same users and keys (after an upgrade; no
credential changes; vmbs start does it for its own folder). Reload nats-server then (nats-server --signal reload).
Exit status: 0 rewritten or already current, 1 no usable auth.conf, 2 bad usage.`,
  bus: `Usage: vmbs bus setup [--hosts HV1,HV2,...]

With the operator's credential (the auth folder's operator.nk, or NATS_NKEY_SEED=…/operator.nk), makes the streams
VMBS_CMD and VMBS_EVT, every KV bucket, and the durable consumers of the notifier and of each host's agent, mirror
and restore service, with this version's limits. The roles may not make them (a consumer's delivery subject cannot
be restricted by permissions), so run it once for a fleet before its services start; vmbs start does it for its own
host. Idempotent.
  --hosts LIST         host ids (HOST_ID) of the fleet (default: HOST_ID of this machine)
Exit status: 0 ready, 1 the credential may not manage streams, 2 bad usage, 78 unreadable credentials.`,
  policy: `Usage: vmbs policy [--domain NAME]... [--json]

Prints the policy in effect for every persistent domain of LIBVIRT_URI (or for each --domain): the VMBS_POLICY_FILE
entry that matched (the first whose name or glob matches), else the environment, for schedule, chain length, local
and mirror retention, RPO and hooks. Reads only; a bad policy file is reported entry by entry.
  --domain NAME     this domain (repeatable); does not need libvirt
  --json            {file, domains: [effective policy]} on one line (for scripts)
Exit status: 0 printed, 2 bad usage, 69 libvirt unreachable, ${x.config} invalid configuration or policy file.`,
  "install-service": `Usage: vmbs install-service [--unit-dir DIR] [--config-file FILE] [--force]

Writes the systemd unit vm-babysitter.service, which runs "vmbs start" on this node and this installation, and its
environment file holding every configuration variable set now (mode 0600). The unit restarts vmbs on failure, but not
after exit ${x.config} (invalid configuration) or ${x.backupPath} (LOCAL_BACKUP_PATH missing or refused), and starts after libvirtd.
Then: systemctl daemon-reload && systemctl enable --now vm-babysitter
  --unit-dir DIR      where the unit goes (default /etc/systemd/system)
  --config-file FILE  the environment file (default /etc/default/vm-babysitter)
  --force             replace an existing unit and environment file
Exit status: 0 written, 1 a file exists, 2 bad usage or a path the unit cannot hold, ${x.config} invalid configuration.`,
};

async function main(argv: string[]): Promise<number> {
  // Backups, the state dir (nats store, KV) and logs hold whole disks and secrets: private to the service user.
  // Set first, so every file and child process (virtnbdbackup, nats-server) inherits it.
  process.umask(0o077);
  const [command, ...rest] = argv;
  if (!command || command === "--help" || command === "-h" || command === "help") {
    process.stdout.write(`${usage.main}\n`);
    return command ? 0 : 2;
  }
  if (command === "--version" || command === "-V") {
    process.stdout.write(`${versionLine()}\n`);
    return 0;
  }
  if (!(command in usage) || command === "main") {
    process.stderr.write(`unknown command ${JSON.stringify(command)}\n\n${usage.main}\n`);
    return 2;
  }
  if (command === "healthcheck") return healthcheckCommand(rest);
  let values: {
    help?: boolean;
    domain?: string;
    host?: string;
    level?: string;
    timeout?: string;
    json?: boolean;
    hosts?: string;
    "share-root"?: string[];
    out?: string;
    force?: boolean;
    from?: string;
    set?: string;
    checkpoint?: string;
    disk?: string;
    as?: string;
    "in-place"?: boolean;
    yes?: boolean;
    list?: boolean;
    plan?: boolean;
    to?: string;
    mac?: string;
    "disk-dir"?: string;
    "no-copy"?: boolean;
    all?: boolean;
    follow?: boolean;
    since?: string;
    "unit-dir"?: string;
    "config-file"?: string;
    "dry-run"?: boolean;
    "target-dir"?: string;
    finish?: string;
    abandon?: string;
  };
  let positionals: string[] = [];
  let policyDomains: string[] = [];
  try {
    const help = { type: "boolean", short: "h" } as const;
    const text = { type: "string" } as const;
    const flag = { type: "boolean" } as const;
    if (command === "bus") {
      ({ values, positionals } = parseArgs({ args: rest, options: { help, hosts: text }, strict: true, allowPositionals: true }));
    } else if (command === "auth") {
      const options = { help, hosts: text, "share-root": { type: "string", multiple: true }, out: text, force: flag } as const;
      ({ values, positionals } = parseArgs({ args: rest, options, strict: true, allowPositionals: true }));
    } else if (command === "restore") {
      const options = { help, domain: text, host: text, from: text, set: text, checkpoint: text, disk: text, as: text, "in-place": flag, yes: flag, list: flag, plan: flag, timeout: text, json: flag } as const;
      ({ values } = parseArgs({ args: rest, options, strict: true }));
    } else if (command === "policy") {
      const options = { help, domain: { type: "string", multiple: true }, json: { type: "boolean" } } as const;
      const parsed = parseArgs({ args: rest, options, strict: true });
      values = { ...parsed.values, domain: undefined };
      policyDomains = parsed.values.domain ?? [];
    } else if (command === "install-service") {
      const options = { help, "unit-dir": text, "config-file": text, force: { type: "boolean" } } as const;
      ({ values } = parseArgs({ args: rest, options, strict: true }));
    } else if (command === "status") {
      const options = { help, domain: text, host: text, json: flag, timeout: text } as const;
      ({ values } = parseArgs({ args: rest, options, strict: true }));
    } else if (command === "instant-restore") {
      const options = { help, domain: text, as: text, set: text, checkpoint: text, "target-dir": text, finish: text, abandon: text, host: text, yes: flag, timeout: text, json: flag } as const;
      ({ values } = parseArgs({ args: rest, options, strict: true }));
    } else if (command === "replicate") {
      const options = { help, domain: text, as: text, host: text, to: text, mac: text, "disk-dir": text, "no-copy": flag, yes: flag, plan: flag, timeout: text, json: flag } as const;
      ({ values } = parseArgs({ args: rest, options, strict: true }));
    } else if (command === "backup") {
      const options = { help, domain: text, all: flag, host: text, level: text, timeout: text, json: flag } as const;
      ({ values } = parseArgs({ args: rest, options, strict: true }));
    } else if (chainVerbs.includes(command as ChainVerb) || command === "drill") {
      const options = { help, domain: text, host: text, timeout: text, json: flag } as const;
      ({ values } = command === "retention" ? parseArgs({ args: rest, options: { ...options, "dry-run": flag }, strict: true }) : parseArgs({ args: rest, options, strict: true }));
    } else if (command === "events") {
      ({ values } = parseArgs({ args: rest, options: { help, host: text, since: text, follow: flag, json: flag }, strict: true }));
    } else
      values =
        command === "mirror"
          ? parseArgs({ args: rest, options: { help, domain: text, host: text, timeout: text, json: flag }, strict: true }).values
          : parseArgs({ args: rest, options: { help }, strict: true }).values;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${usage[command]}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${usage[command]}\n`);
    return 0;
  }
  if (command === "auth") {
    if (positionals.length === 1 && positionals[0] === "refresh" && !values.hosts && !values["share-root"] && !values.force) return authRefreshCommand({ out: values.out });
    if (positionals.length !== 1 || positionals[0] !== "init") {
      process.stderr.write(`expected "vmbs auth init" or "vmbs auth refresh [--out DIR]"\n\n${usage.auth}\n`);
      return 2;
    }
    return authInitCommand({ hosts: values.hosts, shareRoot: values["share-root"], out: values.out, force: values.force });
  }
  if (command === "bus") {
    if (positionals.length !== 1 || positionals[0] !== "setup") {
      process.stderr.write(`expected "vmbs bus setup"\n\n${usage.bus}\n`);
      return 2;
    }
    return busSetupCommand({ hosts: values.hosts });
  }
  if (command === "install-service") {
    return installServiceCommand({ unitDir: values["unit-dir"], configFile: values["config-file"], force: values.force });
  }
  if (command === "status") {
    const timeoutSec = Number(values.timeout ?? 10);
    if (!Number.isFinite(timeoutSec) || timeoutSec <= 0) {
      process.stderr.write(`--timeout must be a positive number\n\n${usage.status}\n`);
      return 2;
    }
    return statusCommand({ host: values.host, domain: values.domain, json: values.json === true, timeoutSec });
  }
  if (command === "policy") return policyCommand({ domains: policyDomains, json: values.json === true });
  if (command === "backup") {
    const timeoutSec = Number(values.timeout ?? 3600);
    if ((typeof values.domain === "string") === (values.all === true) || !Number.isFinite(timeoutSec) || timeoutSec <= 0) {
      process.stderr.write(`give exactly one of --domain and --all; --timeout must be a positive number\n\n${usage.backup}\n`);
      return 2;
    }
    return backupCommand({ domain: values.domain, all: values.all === true, host: values.host, level: values.level ?? "auto", timeoutSec, json: values.json === true });
  }
  if (chainVerbs.includes(command as ChainVerb) || command === "drill") {
    // A drill restores every chain of the host: as long as a restore may take.
    const timeoutSec = Number(values.timeout ?? (command === "drill" ? 21_600 : 3600));
    if (!Number.isFinite(timeoutSec) || timeoutSec <= 0) {
      process.stderr.write(`--timeout must be a positive number\n\n${usage[command]}\n`);
      return 2;
    }
    const o = { domain: values.domain, host: values.host, timeoutSec, json: values.json === true };
    if (values["dry-run"] === true) return retentionDryRun(o);
    return command === "drill" ? drillCommand(o) : chainCommand({ verb: command as ChainVerb, ...o });
  }
  if (command === "events") return eventsCommand({ host: values.host, since: values.since ?? "24h", follow: values.follow === true, json: values.json === true });
  if (command === "mirror") {
    const timeoutSec = Number(values.timeout ?? 3600);
    if (!Number.isFinite(timeoutSec) || timeoutSec <= 0) {
      process.stderr.write(`--timeout must be a positive number\n\n${usage.mirror}\n`);
      return 2;
    }
    return mirrorCommand({ domain: values.domain, host: values.host, timeoutSec, json: values.json === true });
  }
  // Restores and replications copy whole disks: 6 h unless told otherwise.
  const longTimeoutSec = Number(values.timeout ?? 21_600);
  if ((command === "restore" || command === "replicate" || command === "instant-restore") && (!Number.isFinite(longTimeoutSec) || longTimeoutSec <= 0)) {
    process.stderr.write(`--timeout must be a positive number\n\n${usage[command]}\n`);
    return 2;
  }
  if (command === "restore") {
    return restoreCommand({
      domain: values.domain,
      host: values.host,
      from: values.from,
      set: values.set,
      checkpoint: values.checkpoint,
      disk: values.disk,
      as: values.as,
      inPlace: values["in-place"],
      yes: values.yes,
      list: values.list,
      plan: values.plan,
      timeoutSec: longTimeoutSec,
      json: values.json === true,
    });
  }
  if (command === "instant-restore") {
    return instantRestoreCommand({
      domain: values.domain,
      as: values.as,
      set: values.set,
      checkpoint: values.checkpoint,
      targetDir: values["target-dir"],
      finish: values.finish,
      abandon: values.abandon,
      host: values.host,
      yes: values.yes,
      timeoutSec: longTimeoutSec,
      json: values.json === true,
    });
  }
  if (command === "replicate") {
    return replicateCommand({
      domain: values.domain,
      as: values.as,
      host: values.host,
      to: values.to,
      mac: values.mac,
      diskDir: values["disk-dir"],
      noCopy: values["no-copy"],
      yes: values.yes,
      plan: values.plan,
      timeoutSec: longTimeoutSec,
      json: values.json === true,
    });
  }
  return serve(command as ServeRole);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`vmbs: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
