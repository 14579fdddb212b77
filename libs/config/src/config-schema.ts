import { hostname, release } from "node:os";
import { z } from "zod";
import { isHostToken, normalizeHostToken, parseNotifyUrl, NotifyUrlError, type NotifyTarget } from "@vmbs/contracts";
import { refusedEngineArgs } from "./engine-args.js";
import { absolutePath, optionalAbsolutePath, count, cronExpression, flag, listenAddress, natsUrlList, optionalCount, optionalText, timeZone, wordList } from "./env-fields.js";

const defaultSshOptions =
  "-q -o IdentityFile=/private/hostname.key -o BatchMode=yes -o StrictHostKeyChecking=no -o ConnectTimeout=10";
const defaultLogrotateSettings = [
  "compress",
  "copytruncate",
  "daily",
  "dateext",
  "dateformat .%Y-%m-%d.%H:%M:%S",
  "missingok",
  "notifempty",
  "rotate 30",
].join("\n");

/** `user@host:/absolute/path` (a mirror over ssh) or an absolute local path (a mounted share). */
const mirrorPath = optionalText().refine((v) => v === undefined || v.startsWith("/") || /^[^@\s/]+@[^:\s/]+:\//.test(v), {
  message: "expected an absolute path or user@host:/absolute/path",
});

/** VIRTNBDBACKUP_ARGS without the options that would move the backup or change what it is (refusedEngineArgs). */
const engineArgs = wordList().superRefine((args, ctx) => {
  for (const r of refusedEngineArgs(args)) ctx.addIssue({ code: "custom", message: `${r.option} is not allowed (${JSON.stringify(r.arg)}): ${r.reason}` });
});

/**
 * NOTIFY_URLS: space-separated target URLs; each is checked at start-up. Unset: `unraid://` on an Unraid kernel
 * (as the seed), nothing elsewhere.
 */
const notifyUrls = z
  .string()
  .default("")
  .transform((v, ctx): NotifyTarget[] => {
    const words = v.trim() === "" ? (release().endsWith("-Unraid") ? ["unraid://"] : []) : v.trim().split(/\s+/);
    const targets: NotifyTarget[] = [];
    for (const word of words) {
      try {
        targets.push(parseNotifyUrl(word));
      } catch (err) {
        if (!(err instanceof NotifyUrlError)) throw err;
        ctx.addIssue({ code: "custom", message: err.message });
      }
    }
    return targets;
  });

/** `redis://[user:pass@]host:port[/db]`, `rediss://…` or `unix:///path/to/redis.sock`. */
const redisUrl = optionalText().refine((v) => v === undefined || /^(rediss?:\/\/[^/\s]+(\/\d+)?\/?|unix:\/\/\/\S+)$/.test(v), {
  message: "expected redis://host:port, rediss://host:port or unix:///path/to/redis.sock",
});

/**
 * Every environment variable VM-Babysitter reads, with the seed's defaults. Field names are the env names,
 * so an error message names the variable a person has to fix.
 */
export const configSchema = z.object({
  LOCAL_BACKUP_PATH: absolutePath("/backups"),
  MAX_BACKUPS_PER_CHAIN: count(30, 100_000),
  LOCAL_BACKUP_CHAINS_TO_KEEP: count(1, 100_000),
  /**
   * Opt-in calendar retention of local archives (0 = off): keep the chain holding the newest restore point of
   * each of the last N days / ISO weeks / months, in addition to (union with) LOCAL_BACKUP_CHAINS_TO_KEEP.
   * It can only keep more; with LOCAL_BACKUP_CHAINS_TO_KEEP=0 everything is kept anyway.
   */
  LOCAL_RETENTION_DAYS: count(0, 36_500),
  LOCAL_RETENTION_WEEKS: count(0, 5_200),
  LOCAL_RETENTION_MONTHS: count(0, 1_200),
  RSYNC_BACKUP_PATH: mirrorPath,
  RSYNC_BACKUP_CHAINS_TO_KEEP: count(2, 100_000),
  RSYNC_ARGS: wordList("-a"),
  RSYNC_SCHEDULE: cronExpression(""),
  /**
   * rclone remotes the mirror also copies each chain to (`name:` or `name:path`, e.g. an S3/B2/SFTP remote wrapped
   * in rclone's `crypt`), configured in rclone's own config file; same schedule, events, verification and retention.
   */
  MIRROR_RCLONE_TARGETS: wordList().refine((list) => list.every((t) => /^[\w.\- ]+:/.test(t) && !t.startsWith("-")), {
    message: "expected rclone remotes as name: or name:path",
  }),
  /** rclone's config file for MIRROR_RCLONE_TARGETS (default: rclone's own lookup, e.g. ~/.config/rclone/rclone.conf). */
  MIRROR_RCLONE_CONFIG: optionalAbsolutePath(),
  BACKUP_SCHEDULE: cronExpression("@daily"),
  /** Restore drills of every host at this schedule (cron or macro, read in TZ), published by the scheduler; empty = off. */
  DRILL_SCHEDULE: cronExpression(""),
  /** Where drills restore into (removed after each run); default `<LOCAL_BACKUP_PATH>/.vmbs-drill`, on the backup disk, not in RAM. */
  DRILL_SCRATCH_PATH: optionalAbsolutePath(),
  VIRTNBDBACKUP_ARGS: engineArgs,
  VM_IGNORED_LIST: wordList(),
  /**
   * When set, the only domains backed up: names or shell globs (`prod-*`, `"win 11"`); the others are listed but left
   * alone, like VM_IGNORED_LIST's (which still wins). Empty: every domain.
   */
  VM_ALLOWED_LIST: wordList().refine((list) => list.every((w) => w !== "" && !w.includes("/")), {
    message: "expected domain names or globs (not empty, no /: libvirt refuses / in a domain name)",
  }),
  VM_AUTOSTART_LIST: wordList(),
  VM_ALLOW_POWERCYCLE: flag(),
  VM_ALLOW_BACKUP_CHAIN_FIX: flag(),
  CHECK_BACKUPS_INTEGRITY: flag(),
  VM_WAIT_TIME: count(60, 86_400),
  UNRAID_NOTIFY_HOST: z.string().default("localhost"),
  SSH_OPTIONS: wordList(defaultSshOptions),
  NOTIFY_URLS: notifyUrls,
  /**
   * Recovery point objective in minutes: a scheduled domain whose last good backup is older is overdue (status
   * `rpo.breached`, one `vmbs.evt.fleet.<host>.stale` alarm per episode). Unset: NOTIFY_STALE_HOURS × 60 when that
   * is set, else 1560 (26 h: a daily schedule with two hours to spare).
   */
  BACKUP_RPO_MINUTES: optionalCount(1, 5_256_000),
  /**
   * A YAML (or JSON) file of per-domain policies (schedule, chain length, retention, mirror, RPO, hooks), matched
   * by name or glob, first match wins; what an entry leaves out comes from the variables here. Unset: none.
   */
  VMBS_POLICY_FILE: optionalAbsolutePath(),
  /** The former name of the RPO, in hours (kept as an alias of BACKUP_RPO_MINUTES); 0 = no stale alarms. */
  NOTIFY_STALE_HOURS: optionalCount(0, 8_760),
  /** Redis of the notifier's queue (BullMQ). Unset: `vmbs start` / `vmbs notifier` run their own redis-server. */
  REDIS_URL: redisUrl,
  LOGFILE_PATH: absolutePath("/logs/vm-babysitter.log"),
  SCHEDULE_LOGFILE_PATH: absolutePath("/logs/scheduled-tasks.log"),
  LOGROTATE_CONFIG_PATH: absolutePath("/tmp/logrotate.d/vm-babysitter"),
  LOGROTATE_SCHEDULE: cronExpression("@daily"),
  /** Empty as unset (a container template passes every variable, empty ones too): the seed's stanza. */
  LOGROTATE_SETTINGS: z
    .string()
    .default(defaultLogrotateSettings)
    .transform((v) => (v.trim() === "" ? defaultLogrotateSettings : v)),
  TZ: timeZone(),
  /**
   * Unset: `vmbs start` runs its own nats-server on 127.0.0.1:VMBS_LOCAL_NATS_PORT. May carry credentials
   * (`nats://user:pass@host:4222`, `nats://token@host`); they are never logged.
   */
  NATS_URL: natsUrlList(),
  /** Bus credentials (at most one kind): a `.creds` file (JWT + nkey, operator mode), an nkey seed file (`vmbs auth init`). */
  NATS_CREDS: optionalAbsolutePath(),
  NATS_NKEY_SEED: optionalAbsolutePath(),
  NATS_USER: optionalText(),
  NATS_PASSWORD: optionalText(),
  NATS_TOKEN: optionalText(),
  /** TLS: the CA that signed the server's certificate, and a client certificate + key when the server verifies clients. */
  NATS_TLS_CA: optionalAbsolutePath(),
  NATS_TLS_CERT: optionalAbsolutePath(),
  NATS_TLS_KEY: optionalAbsolutePath(),
  HOST_ID: optionalText()
    .transform((v) => v ?? normalizeHostToken(hostname()))
    .refine(isHostToken, { message: "expected 1-64 characters of A-Z a-z 0-9 _ - (it becomes a NATS subject token)" }),
  LIBVIRT_URI: z.string().default("qemu:///system"),
  /** Where `vmbs start` keeps its local nats-server data and the agent its state. */
  VMBS_STATE_DIR: absolutePath("/var/lib/vm-babysitter"),
  /**
   * Client port of `vmbs start`'s own nats-server, and of every command's default NATS_URL. Not NATS's usual 4222:
   * Debian's nats-server package runs a server without JetStream there, which would take the port first.
   */
  VMBS_LOCAL_NATS_PORT: count(4322, 65_535),
  /**
   * MiB of disk the local nats-server's JetStream may use (`max_file_store`). The streams and buckets reserve their
   * own limits (about 1.7 GiB together) out of it, hence the minimum.
   */
  VMBS_LOCAL_NATS_MAX_STORE_MB: count(2048, 1_048_576).refine((v) => v >= 2048, { message: "expected at least 2048 (MiB): the streams and buckets reserve about 1.7 GiB" }),
  /**
   * Run the local nats-server of `vmbs start` without authorization (any local user or container could command
   * restores). Off: its credentials are generated on first start. Has no effect on a NATS_URL server.
   */
  VMBS_INSECURE_BUS: flag(),
  /**
   * Replicas of every stream and bucket set-up creates: 3 on a 3-node JetStream cluster (a node may die), 1 on a
   * single server. An existing stream with another count is reported, never recreated.
   */
  VMBS_STREAM_REPLICAS: count(1, 3).refine((v) => v === 1 || v === 3, { message: "expected 1 (a single server) or 3 (a 3-node cluster)" }),
  /**
   * Seconds one libvirt call may take (start, destroy and checkpoint deletion: 3×); a stuck call fails instead of
   * hanging. The default is libs/virt's DEFAULT_LIBVIRT_TIMEOUT_MS, the limit of callers without a config.
   */
  VMBS_LIBVIRT_TIMEOUT: count(60, 86_400).refine((v) => v >= 1, { message: "expected at least 1 second" }),
  /** Seconds a virtnbdbackup run may go without a log line or output growth before it is cancelled; 0 = never. */
  VMBS_ENGINE_STALL_TIMEOUT: count(900, 604_800),
  /**
   * Seconds a command handed to an agent that stops answering (crashed, frozen, cut off from NATS) waits before
   * JetStream delivers it again; a working agent keeps its commands alive, however long a backup runs.
   */
  VMBS_COMMAND_ACK_WAIT: count(60, 3_600).refine((v) => v >= 5, { message: "expected at least 5 seconds" }),
  /** The status page and Prometheus `/metrics` of `vmbs start` / `vmbs status-service`; empty = off. */
  VMBS_HTTP_LISTEN: listenAddress("127.0.0.1:9780"),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
});

export type Config = z.output<typeof configSchema>;
