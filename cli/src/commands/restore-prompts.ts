import { emitKeypressEvents } from "node:readline";
import { createInterface } from "node:readline/promises";
import { VmbsError } from "@vmbs/contracts";

/** The person left the interactive restore (Ctrl-C or Escape): nothing was asked of the service. */
export class PromptCancelledError extends VmbsError {
  constructor() {
    super("cancelled", "cancelled, nothing changed");
  }
}

export interface Choice<T> {
  label: string;
  value: T;
}

/**
 * An arrow-key menu on the terminal (stdin in raw mode, drawn on stderr so stdout keeps only the JSON result):
 * ↑/↓ move, Enter picks, Ctrl-C or Escape cancels.
 */
export function select<T>(question: string, choices: readonly Choice<T>[], initial = 0): Promise<T> {
  if (choices.length === 0) return Promise.reject(new Error(`${question}: nothing to choose from`));
  const input = process.stdin;
  const out = process.stderr;
  let index = Math.min(initial, choices.length - 1);
  let drawn = 0;
  const draw = (): void => {
    if (drawn > 0) out.write(`\x1b[${drawn}A\x1b[J`);
    const lines = [`? ${question}`, ...choices.map((c, i) => `${i === index ? "❯" : " "} ${c.label}`)];
    out.write(`${lines.join("\n")}\n`);
    drawn = lines.length;
  };
  return new Promise<T>((resolve, reject) => {
    emitKeypressEvents(input);
    input.setRawMode(true);
    input.resume();
    const done = (): void => {
      input.off("keypress", onKey);
      input.setRawMode(false);
      input.pause();
    };
    const onKey = (_: string, key: { name?: string; ctrl?: boolean } | undefined): void => {
      if (!key) return;
      if ((key.ctrl && key.name === "c") || key.name === "escape") {
        done();
        reject(new PromptCancelledError());
      } else if (key.name === "up" || key.name === "down") {
        index = (index + (key.name === "up" ? choices.length - 1 : 1)) % choices.length;
        draw();
      } else if (key.name === "return" || key.name === "enter") {
        done();
        out.write(`\x1b[${drawn}A\x1b[J? ${question} ${choices[index]!.label}\n`);
        resolve(choices[index]!.value);
      }
    };
    input.on("keypress", onKey);
    draw();
  });
}

/** A line of text with a default (Enter keeps it). */
export async function askText(question: string, fallback: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = (await rl.question(`? ${question} (${fallback}) `)).trim();
    return answer === "" ? fallback : answer;
  } finally {
    rl.close();
  }
}
