import { waitFor } from "@vmbs/lab";

/**
 * Runs `command` (a `vmbs` command run with `reject: false`) again and again until the stack just started by
 * `vmbs start` accepts it, and resolves with that run: until the stack is up, the command fails before printing
 * anything (no server, no stream yet).
 */
export function onceStackUp<R extends { exitCode?: number; stdout: string }>(command: () => Promise<R>, timeoutMs = 60_000): Promise<R> {
  return waitFor(
    async () => {
      const r = await command();
      return r.exitCode !== 0 && r.stdout.trim() === "" ? undefined : r;
    },
    { timeoutMs, intervalMs: 500, what: "the stack to accept commands" },
  );
}
