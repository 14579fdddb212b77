/**
 * Which VIRTNBDBACKUP_ARGS the agent refuses: the config schema reads them, so a refused option is a start-up
 * error naming the setting, not a failed backup. The agent owns where a
 * backup goes, of which domain over which URI, at which level and in which form; an extra option that changed
 * any of that would write a chain the agent does not see, or none at all. argparse lets the last occurrence
 * win, accepts any unambiguous prefix of a long option (`--out=/x`) and clusters short options (`-no/x` is
 * `-n -o /x`), so each word is read the way argparse reads it.
 */

interface OptionRule {
  long: string;
  short?: string;
  /** Takes a value (argparse `nargs=None` or `?`): the rest of a short-option cluster is that value. */
  value: boolean;
  /** Why the agent refuses it; undefined = allowed. */
  refused?: string;
}

/** virtnbdbackup 1.9.15's options (`virtnbdbackup --help`); options of later versions are long-only or allowed. */
const rules: OptionRule[] = [
  { long: "--domain", short: "d", value: true, refused: "the agent passes the domain of each backup itself" },
  { long: "--level", short: "l", value: true, refused: "the agent chooses full or inc itself (copy and diff make no chain)" },
  { long: "--output", short: "o", value: true, refused: "it would move the backup out of LOCAL_BACKUP_PATH/<domain>" },
  { long: "--uri", short: "U", value: true, refused: "set LIBVIRT_URI instead" },
  { long: "--checkpointdir", short: "C", value: true, refused: "it would move the checkpoint files out of the chain folder" },
  {
    long: "--scratchdir",
    short: "S",
    value: true,
    refused: "scratch files outside /var/tmp escape the chain check's cleanup (and -S means --start-domain from 2.3 on)",
  },
  { long: "--socketfile", short: "f", value: true, refused: "an NBD socket outside /var/tmp escapes the chain check's cleanup" },
  { long: "--type", short: "t", value: true, refused: "raw output is no stream chain the agent can check or continue" },
  { long: "--raw", short: "r", value: false, refused: "raw disks would be written as full copies into every checkpoint" },
  { long: "--startonly", short: "s", value: false, refused: "it starts a libvirt job and writes no backup" },
  { long: "--killonly", short: "k", value: false, refused: "it aborts a job and writes no backup" },
  { long: "--printonly", short: "p", value: false, refused: "it writes no backup for inc (and for full runs one anyway after deleting checkpoints)" },
  { long: "--threshold", short: "T", value: true, refused: "a run below the threshold writes no backup and would count as failed" },
  { long: "--strict", short: "e", value: false, refused: "every run without a guest agent logs a warning, so every backup would end with exit code 2" },
  { long: "--help", short: "h", value: false, refused: "it prints help instead of backing up" },
  { long: "--version", short: "V", value: false, refused: "it prints the version instead of backing up" },
  { long: "--include", short: "i", value: true },
  { long: "--exclude", short: "x", value: true },
  { long: "--noprogress", short: "n", value: false },
  { long: "--compress", short: "z", value: true },
  { long: "--worker", short: "w", value: true },
  { long: "--freeze-mountpoint", short: "F", value: true },
  { long: "--user", value: true },
  { long: "--ssh-user", value: true },
  { long: "--password", value: true },
  { long: "--nbd-port", short: "P", value: true },
  { long: "--nbd-ip", short: "I", value: true },
  { long: "--tls", value: false },
  { long: "--tls-cert", value: true },
  { long: "--syslog", short: "L", value: false },
  { long: "--qemu", short: "q", value: false },
  { long: "--verbose", short: "v", value: false },
];

const byLong = new Map(rules.map((r) => [r.long, r]));
const byShort = new Map(rules.flatMap((r) => (r.short ? [[r.short, r] as const] : [])));
const refusedLong = rules.filter((r) => r.refused);

export interface RefusedEngineArg {
  /** The word of VIRTNBDBACKUP_ARGS as given. */
  arg: string;
  /** The long name of the option it means, e.g. "--output" for `-o/x`. */
  option: string;
  reason: string;
}

/** The options of a long-option word: exactly named, or (argparse abbreviations) every refused one it prefixes. */
function longRefusals(arg: string): RefusedEngineArg[] {
  const name = arg.split("=")[0]!;
  const exact = byLong.get(name);
  if (exact) return exact.refused ? [{ arg, option: exact.long, reason: exact.refused }] : [];
  return refusedLong.filter((r) => r.long.startsWith(name)).map((r) => ({ arg, option: r.long, reason: `an abbreviation of ${r.long}: ${r.refused}` }));
}

/** A short-option cluster: flags until the first option that takes a value (the rest is that value). */
function shortRefusals(arg: string): RefusedEngineArg[] {
  const out: RefusedEngineArg[] = [];
  for (const c of arg.slice(1)) {
    const rule = byShort.get(c);
    if (!rule) break; // unknown to 1.9.15 (argparse refuses it) or a negative number
    if (rule.refused) out.push({ arg, option: rule.long, reason: rule.refused });
    if (rule.value) break;
  }
  return out;
}

/** The words of VIRTNBDBACKUP_ARGS the agent refuses, each with the option it means and why. */
export function refusedEngineArgs(args: readonly string[]): RefusedEngineArg[] {
  return args.flatMap((arg) => (arg.startsWith("--") && arg.length > 2 ? longRefusals(arg) : arg.startsWith("-") && arg.length > 1 ? shortRefusals(arg) : []));
}
