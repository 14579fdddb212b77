import { wantsHumanOutput } from "./event-lines.js";
import { painter, stdoutWantsColour } from "./human-format.js";

/*
 * A service's reply (a restore, a replication, a plan, a listing) as `vmbs restore|replicate` print it: indented
 * `name  value` lines a person reads on a terminal, the reply as it came on one JSON line for scripts.
 */

const scalar = (v: unknown): string => (typeof v === "string" ? v : JSON.stringify(v));

/** The reply as lines: a field per line, lists and objects one item per line below their name. */
export function describeReply(reply: unknown, colour: boolean, indent = ""): string[] {
  const p = painter(colour);
  if (Array.isArray(reply)) {
    if (reply.every((v) => typeof v !== "object" || v === null)) return reply.map((v) => `${indent}- ${scalar(v)}`);
    return reply.flatMap((item) => {
      const [first = "", ...rest] = describeReply(item, colour, `${indent}  `);
      return [`${indent}- ${first.trimStart()}`, ...rest];
    });
  }
  if (typeof reply !== "object" || reply === null) return [`${indent}${scalar(reply)}`];
  return Object.entries(reply).flatMap(([name, value]) => {
    const label = p.bold(name);
    if (Array.isArray(value) && value.length === 0) return [`${indent}${label}  ${p.dim("(none)")}`];
    if (typeof value === "object" && value !== null) return [`${indent}${label}`, ...describeReply(value, colour, `${indent}  `)];
    return [`${indent}${label}  ${name === "error" || name === "refusal" ? p.red(scalar(value)) : scalar(value)}`];
  });
}

/** Prints a reply: lines on a terminal, one JSON line with `--json` or when stdout is not a terminal. */
export function printReply(reply: unknown, json: boolean): void {
  process.stdout.write(wantsHumanOutput(json) ? `${describeReply(reply, stdoutWantsColour()).join("\n")}\n` : `${JSON.stringify(reply)}\n`);
}
