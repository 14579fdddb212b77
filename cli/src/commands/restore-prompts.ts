import { emitKeypressEvents } from "node:readline";
import { input, select as inquirerSelect } from "@inquirer/prompts";
import { VmbsError } from "@vmbs/contracts";

/*
 * The interactive restore's questions, asked by @inquirer/prompts on stderr (stdout keeps only the JSON result):
 * arrow-key menus and text with a default. Ctrl-C or Escape cancels.
 */

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

/** Asks one question; Escape aborts it, and a cancelled question (Ctrl-C, Escape) becomes PromptCancelledError. */
async function ask<T>(question: (context: { output: NodeJS.WritableStream; signal: AbortSignal }) => Promise<T>): Promise<T> {
  const escape = new AbortController();
  emitKeypressEvents(process.stdin);
  const onKey = (_: string, key: { name?: string } | undefined) => key?.name === "escape" && escape.abort();
  process.stdin.on("keypress", onKey);
  try {
    return await question({ output: process.stderr, signal: escape.signal });
  } catch (err) {
    if (err instanceof Error && ["ExitPromptError", "AbortPromptError", "CancelPromptError"].includes(err.name)) throw new PromptCancelledError();
    throw err;
  } finally {
    process.stdin.off("keypress", onKey);
  }
}

/** An arrow-key menu: ↑/↓ move, Enter picks. */
export function select<T>(question: string, choices: readonly Choice<T>[], initial = 0): Promise<T> {
  if (choices.length === 0) return Promise.reject(new Error(`${question}: nothing to choose from`));
  const start = choices[Math.min(initial, choices.length - 1)]!.value;
  return ask((context) => inquirerSelect({ message: question, choices: choices.map((c) => ({ name: c.label, value: c.value })), default: start, loop: false }, context));
}

/** A line of text with a default (Enter keeps it). */
export function askText(question: string, fallback: string): Promise<string> {
  return ask(async (context) => (await input({ message: question, default: fallback }, context)).trim() || fallback);
}
