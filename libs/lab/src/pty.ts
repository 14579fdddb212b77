import assert from "node:assert/strict";
import { execa } from "execa";
import { waitFor } from "./wait-for.js";

/**
 * Runs a command on a real pseudo-terminal (python's pty.spawn: an argument array, no shell) and answers its
 * prompts: for each step, waits for `prompt` in the new output, then types `keys`. Returns the exit status and
 * everything the terminal showed.
 */
export async function runOnPty(command: string, args: readonly string[], env: Record<string, string>, steps: readonly [RegExp, string][]): Promise<{ exitCode: number | undefined; out: string }> {
  const p = execa("python3", ["-c", "import pty, sys; sys.exit(pty.spawn(sys.argv[1:]) >> 8)", command, ...args], { env, reject: false, stdin: "pipe", timeout: 120_000 });
  let out = "";
  p.stdout?.on("data", (c: Buffer) => (out += c.toString()));
  for (const [prompt, keys] of steps) {
    const seen = out.length;
    await waitFor(() => prompt.test(out.slice(seen)) || p.exitCode !== null, { timeoutMs: 60_000, intervalMs: 50, what: `the prompt ${prompt}` });
    assert.match(out.slice(seen), prompt, out);
    p.stdin?.write(keys);
  }
  const r = await p;
  return { exitCode: r.exitCode, out };
}
