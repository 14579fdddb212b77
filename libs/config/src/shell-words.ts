/*
 * Words handed to a shell we do not run ourselves: the remote side of ssh (which always gets one command line)
 * and rsync's `-e` (which splits its value on spaces). Local programs get argument arrays instead.
 */

/**
 * One POSIX-shell word: single quotes, each `'` as `'\''`, NUL bytes dropped (no shell can pass them). Inside
 * single quotes nothing is special, so `$(…)`, backticks and quotes reach the program as plain text.
 */
export function shellQuote(arg: string): string {
  return `'${arg.replace(/\0/g, "").replace(/'/g, `'\\''`)}'`;
}

/**
 * rsync's `-e` value: rsync splits it on spaces itself, honouring single quotes, so each ssh option word is
 * quoted when it holds a space or a quote (a word with a single quote cannot be quoted that way and is refused).
 */
export function rsyncRemoteShell(sshOptions: readonly string[]): string {
  const quoted = sshOptions.map((w) => {
    if (w.includes("'")) throw new RangeError(`SSH_OPTIONS: a word with a single quote cannot be passed to rsync: ${JSON.stringify(w)}`);
    return /[\s"\\]/.test(w) || w === "" ? `'${w}'` : w;
  });
  return ["ssh", ...quoted].join(" ");
}
