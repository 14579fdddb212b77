import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { backupRpo } from "./backup-rpo.js";
import { ConfigError, loadConfig } from "./load-config.js";
import { formatWordList, parseWordList } from "./word-list.js";

describe("loadConfig", () => {
  it("applies every seed default when nothing is set", () => {
    const c = loadConfig({ HOST_ID: "hv1" });
    assert.equal(c.LOCAL_BACKUP_PATH, "/backups");
    assert.equal(c.MAX_BACKUPS_PER_CHAIN, 30);
    assert.equal(c.LOCAL_BACKUP_CHAINS_TO_KEEP, 1);
    assert.equal(c.RSYNC_BACKUP_PATH, undefined);
    assert.equal(c.RSYNC_BACKUP_CHAINS_TO_KEEP, 2);
    assert.deepEqual(c.RSYNC_ARGS, ["-a"]);
    assert.equal(c.RSYNC_SCHEDULE, undefined);
    assert.equal(c.BACKUP_SCHEDULE, "@daily");
    assert.equal(c.DRILL_SCHEDULE, undefined, "drills are off unless scheduled");
    assert.equal(c.DRILL_SCRATCH_PATH, undefined);
    assert.deepEqual(c.VIRTNBDBACKUP_ARGS, []);
    assert.deepEqual(c.VM_IGNORED_LIST, []);
    assert.deepEqual(c.VM_ALLOWED_LIST, []);
    assert.equal(c.VM_ALLOW_POWERCYCLE, false);
    assert.equal(c.VM_ALLOW_BACKUP_CHAIN_FIX, false);
    assert.equal(c.CHECK_BACKUPS_INTEGRITY, false);
    assert.equal(c.VM_WAIT_TIME, 60);
    assert.equal(c.UNRAID_NOTIFY_HOST, "localhost");
    assert.ok(c.SSH_OPTIONS.includes("IdentityFile=/private/hostname.key"));
    assert.equal(c.LOGFILE_PATH, "/logs/vm-babysitter.log");
    assert.equal(c.SCHEDULE_LOGFILE_PATH, "/logs/scheduled-tasks.log");
    assert.equal(c.LOGROTATE_SCHEDULE, "@daily");
    assert.match(c.LOGROTATE_SETTINGS, /rotate 30/);
    assert.equal(c.LIBVIRT_URI, "qemu:///system");
    assert.equal(c.NATS_URL, undefined);
    assert.equal(c.VMBS_LIBVIRT_TIMEOUT, 60);
    assert.equal(c.VMBS_ENGINE_STALL_TIMEOUT, 900);
    assert.equal(c.VMBS_STREAM_REPLICAS, 1);
    assert.equal(c.BACKUP_RPO_MINUTES, undefined);
    assert.deepEqual(backupRpo(c), { minutes: 1560, staleAlarms: true }, "26 h: a daily schedule with two hours to spare");
    assert.deepEqual(c.VMBS_HTTP_LISTEN, { host: "127.0.0.1", port: 9780 });
    assert.equal(c.VMBS_INSECURE_BUS, false);
    assert.equal(c.VMBS_LOCAL_NATS_MAX_STORE_MB, 2048);
  });

  const rpoRows: [string, Record<string, string>, { minutes: number; staleAlarms: boolean }][] = [
    ["BACKUP_RPO_MINUTES", { BACKUP_RPO_MINUTES: "90" }, { minutes: 90, staleAlarms: true }],
    ["NOTIFY_STALE_HOURS, its former name in hours", { NOTIFY_STALE_HOURS: "36" }, { minutes: 2160, staleAlarms: true }],
    ["both: BACKUP_RPO_MINUTES wins", { BACKUP_RPO_MINUTES: "60", NOTIFY_STALE_HOURS: "36" }, { minutes: 60, staleAlarms: true }],
    ["NOTIFY_STALE_HOURS=0: no stale alarms, the default RPO for the verdict", { NOTIFY_STALE_HOURS: "0" }, { minutes: 1560, staleAlarms: false }],
  ];
  for (const [name, env, expected] of rpoRows)
    it(`the RPO in effect: ${name}`, () => assert.deepEqual(backupRpo(loadConfig(env)), expected));

  const listenRows: [string, { host: string; port: number } | null][] = [
    ["", null],
    ["0.0.0.0:9100", { host: "0.0.0.0", port: 9100 }],
    ["[::1]:9780", { host: "::1", port: 9780 }],
    ["127.0.0.1:0", { host: "127.0.0.1", port: 0 }],
  ];
  for (const [value, expected] of listenRows)
    it(`reads VMBS_HTTP_LISTEN=${JSON.stringify(value)}`, () => assert.deepEqual(loadConfig({ VMBS_HTTP_LISTEN: value }).VMBS_HTTP_LISTEN, expected));

  it("keeps the engine options that change nothing the agent relies on, and a stall timeout of 0 (off)", () => {
    const c = loadConfig({ VIRTNBDBACKUP_ARGS: "--compress=2 --worker 2 -x vdb", VMBS_ENGINE_STALL_TIMEOUT: "0" });
    assert.deepEqual(c.VIRTNBDBACKUP_ARGS, ["--compress=2", "--worker", "2", "-x", "vdb"]);
    assert.equal(c.VMBS_ENGINE_STALL_TIMEOUT, 0);
  });

  it("treats empty values like unset ones (compose passes empty strings)", () => {
    const c = loadConfig({ HOST_ID: "", MAX_BACKUPS_PER_CHAIN: "", VM_WAIT_TIME: "", BACKUP_SCHEDULE: "", NATS_URL: "" });
    assert.equal(c.MAX_BACKUPS_PER_CHAIN, 30);
    assert.equal(c.VM_WAIT_TIME, 60);
    assert.equal(c.BACKUP_SCHEDULE, "@daily");
    assert.equal(c.NATS_URL, undefined);
    assert.match(c.HOST_ID, /^[a-z0-9_-]+$/);
  });

  const flagRows: [string, boolean][] = [["yes", true], ["1", true], ["TRUE", true], ["on", true], ["false", false], ["0", false], ["no", false], ["", false]];
  for (const [value, expected] of flagRows)
    it(`reads the flag value ${JSON.stringify(value)} as ${expected} (the seed took any non-empty value as on)`, () => {
      assert.equal(loadConfig({ VM_ALLOW_BACKUP_CHAIN_FIX: value }).VM_ALLOW_BACKUP_CHAIN_FIX, expected);
    });

  const invalidRows: [string, Record<string, string>, RegExp][] = [
    ["a number with letters", { MAX_BACKUPS_PER_CHAIN: "3a" }, /MAX_BACKUPS_PER_CHAIN: expected a whole number/],
    ["a negative number", { VM_WAIT_TIME: "-5" }, /VM_WAIT_TIME: expected a whole number/],
    ["a bad cron", { BACKUP_SCHEDULE: "every day" }, /BACKUP_SCHEDULE: expected a cron expression/],
    ["a bad drill cron", { DRILL_SCHEDULE: "weekly-ish" }, /DRILL_SCHEDULE: expected a cron expression/],
    ["a relative drill scratch path", { DRILL_SCRATCH_PATH: "scratch" }, /DRILL_SCRATCH_PATH: expected an absolute path/],
    ["a bad flag", { VM_ALLOW_POWERCYCLE: "maybe" }, /VM_ALLOW_POWERCYCLE: expected yes\/no/],
    ["a relative backup path", { LOCAL_BACKUP_PATH: "backups" }, /LOCAL_BACKUP_PATH: expected an absolute path/],
    ["a relative mirror", { RSYNC_BACKUP_PATH: "user@host:rel" }, /RSYNC_BACKUP_PATH: expected an absolute path or user@host/],
    ["an unknown time zone", { TZ: "Mars/Olympus" }, /TZ: unknown time zone/],
    ["a host id with a dot", { HOST_ID: "hv1.example.com" }, /HOST_ID: expected 1-64 characters/],
    ["an unterminated quote", { VM_IGNORED_LIST: '"win 11' }, /VM_IGNORED_LIST: unterminated/],
    ["an allowed name with a slash", { VM_ALLOWED_LIST: "prod-* web/db" }, /VM_ALLOWED_LIST: expected domain names or globs/],
    ["an empty allowed name", { VM_ALLOWED_LIST: 'web ""' }, /VM_ALLOWED_LIST: expected domain names or globs/],
    ["a NATS_URL with another scheme", { NATS_URL: "http://nats:4222" }, /NATS_URL: expected nats:\/\/host:port/],
    ["a NATS_URL with a bad port", { NATS_URL: "nats://nats:99999" }, /NATS_URL: expected nats:\/\/host:port/],
    ["a NATS_URL with a path", { NATS_URL: "nats://nats:4222/x" }, /NATS_URL: expected nats:\/\/host:port/],
    ["a NATS_URL list with a bad member", { NATS_URL: "nats://a:4222, nats//b" }, /NATS_URL: expected nats:\/\/host:port/],
    ["an engine option that moves the output", { VIRTNBDBACKUP_ARGS: "--compress=2 -o /elsewhere" }, /VIRTNBDBACKUP_ARGS: --output is not allowed \("-o"\): it would move the backup out of LOCAL_BACKUP_PATH/],
    ["an engine level", { VIRTNBDBACKUP_ARGS: "--level=copy" }, /VIRTNBDBACKUP_ARGS: --level is not allowed \("--level=copy"\): the agent chooses full or inc/],
    ["an abbreviated engine option", { VIRTNBDBACKUP_ARGS: "--dom=other" }, /VIRTNBDBACKUP_ARGS: --domain is not allowed \("--dom=other"\): an abbreviation of --domain/],
    ["a libvirt timeout of 0", { VMBS_LIBVIRT_TIMEOUT: "0" }, /VMBS_LIBVIRT_TIMEOUT: expected at least 1 second/],
    ["a command ack wait under 5 s", { VMBS_COMMAND_ACK_WAIT: "2" }, /VMBS_COMMAND_ACK_WAIT: expected at least 5 seconds/],
    ["a stall timeout with a unit", { VMBS_ENGINE_STALL_TIMEOUT: "15m" }, /VMBS_ENGINE_STALL_TIMEOUT: expected a whole number/],
    ["two stream replicas (no quorum survives a node's loss)", { VMBS_STREAM_REPLICAS: "2" }, /VMBS_STREAM_REPLICAS: expected 1 \(a single server\) or 3/],
    ["stream replicas in words", { VMBS_STREAM_REPLICAS: "three" }, /VMBS_STREAM_REPLICAS: expected a whole number/],
    ["an RPO of 0 minutes", { BACKUP_RPO_MINUTES: "0" }, /BACKUP_RPO_MINUTES: expected a whole number from 1/],
    ["an RPO in words", { BACKUP_RPO_MINUTES: "a day" }, /BACKUP_RPO_MINUTES: expected a whole number from 1/],
    ["a listen address without a port", { VMBS_HTTP_LISTEN: "localhost" }, /VMBS_HTTP_LISTEN: expected host:port/],
    ["a listen port out of range", { VMBS_HTTP_LISTEN: "127.0.0.1:99999" }, /VMBS_HTTP_LISTEN: expected host:port/],
    ["a listen address with a path", { VMBS_HTTP_LISTEN: "http://127.0.0.1:9780/" }, /VMBS_HTTP_LISTEN: expected host:port/],
    ["an insecure-bus flag that is no yes/no", { VMBS_INSECURE_BUS: "maybe" }, /VMBS_INSECURE_BUS: expected yes\/no/],
    ["a nats store below what the streams reserve", { VMBS_LOCAL_NATS_MAX_STORE_MB: "1024" }, /VMBS_LOCAL_NATS_MAX_STORE_MB: expected at least 2048/],
  ];
  it("never echoes a NATS_URL's password in a config error", () => {
    assert.throws(() => loadConfig({ NATS_URL: "http://admin:s3cret@nats:4222" }), (err: unknown) => err instanceof ConfigError && !err.message.includes("s3cret"));
  });
  const natsUrlRows = ["nats://127.0.0.1:4222", "tls://nats.example.com:4222", "localhost:4222", "nats://user:pw@nats", "nats://a:4222,nats://b:4222", "nats://[::1]:4222"];
  for (const url of natsUrlRows)
    it(`accepts the NATS_URL ${url}`, () => {
      assert.equal(loadConfig({ NATS_URL: url }).NATS_URL, url);
    });
  it("takes 3 stream replicas (a 3-node cluster)", () => {
    assert.equal(loadConfig({ VMBS_STREAM_REPLICAS: "3" }).VMBS_STREAM_REPLICAS, 3);
  });
  for (const [name, env, message] of invalidRows)
    it(`names the variable and the expected form for ${name}`, () => {
      assert.throws(() => loadConfig(env), (err: unknown) => err instanceof ConfigError && message.test(err.message));
    });

  it("reports every invalid variable at once", () => {
    assert.throws(
      () => loadConfig({ MAX_BACKUPS_PER_CHAIN: "x", VM_WAIT_TIME: "y" }),
      (err: unknown) => err instanceof ConfigError && err.problems.length === 2,
    );
  });

  it("accepts the seed's macros and 6-field cron", () => {
    for (const expr of ["@daily", "@hourly", "@weekly", "@monthly", "0 3 * * *", "*/30 * * * * *"])
      assert.equal(loadConfig({ BACKUP_SCHEDULE: expr }).BACKUP_SCHEDULE, expr);
  });
});

describe("parseWordList", () => {
  const rows: [string, string[]][] = [
    ["web db", ["web", "db"]],
    ["  web\tdb \n", ["web", "db"]],
    ['"win 11" nas', ["win 11", "nas"]],
    ["'a b' c\\ d", ["a b", "c d"]],
    ['"ü ß" x', ["ü ß", "x"]],
    ["", []],
  ];
  for (const [input, expected] of rows)
    it(`splits ${JSON.stringify(input)}`, () => assert.deepEqual(parseWordList(input), expected));
});

describe("formatWordList", () => {
  it("writes any names so that parseWordList reads them back exactly", () => {
    const names = ["win 11", "it's", 'say "hi"', "back\\slash", "ü ß", "plain"];
    assert.deepEqual(parseWordList(formatWordList(names)), names);
  });
});

describe("NOTIFY_URLS in the config", () => {
  it("a malformed URL is a config error naming NOTIFY_URLS without its secrets", () => {
    assert.throws(() => loadConfig({ NOTIFY_URLS: "json://h/p smtp://u:SECRET@mail?to=x@y" }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.problems.length, 1);
      assert.equal(err.problems[0]!.setting, "NOTIFY_URLS");
      assert.match(err.problems[0]!.expected, /^smtp:\/\/mail.*from=ADDRESS is required/);
      assert.ok(!err.message.includes("SECRET"));
      return true;
    });
  });
  it("reads several targets and a REDIS_URL", () => {
    const c = loadConfig({ NOTIFY_URLS: " json://h/p  unraid:// ", REDIS_URL: "unix:///run/redis.sock" });
    assert.deepEqual(c.NOTIFY_URLS.map((t) => t.kind), ["json", "unraid"]);
    assert.equal(c.REDIS_URL, "unix:///run/redis.sock");
    assert.throws(() => loadConfig({ REDIS_URL: "http://x" }), /REDIS_URL: expected redis:\/\/host:port/);
  });
});

describe("bus credential settings", () => {
  it("reads them; a relative file path names the setting", () => {
    const config = loadConfig({ NATS_NKEY_SEED: "/auth/agent.nk", NATS_USER: "u", NATS_PASSWORD: "p", NATS_TLS_CA: " " });
    assert.equal(config.NATS_NKEY_SEED, "/auth/agent.nk");
    assert.equal(config.NATS_PASSWORD, "p");
    assert.equal(config.NATS_TLS_CA, undefined);
    assert.throws(() => loadConfig({ NATS_CREDS: "user.creds" }), /NATS_CREDS: expected an absolute path/);
  });
});
