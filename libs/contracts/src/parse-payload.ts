import type { z } from "zod";

export type ParseResult<T> = { ok: true; value: T } | { ok: false; reason: string };

/** Parses a JSON message body against a schema and says, in one line, why it was refused. */
export function parsePayload<S extends z.ZodType>(schema: S, body: Uint8Array | string): ParseResult<z.infer<S>> {
  const text = typeof body === "string" ? body : new TextDecoder().decode(body);
  let json: unknown;
  try {
    json = text.trim() === "" ? {} : JSON.parse(text);
  } catch (err) {
    return { ok: false, reason: `payload is not valid JSON: ${(err as Error).message}` };
  }
  const parsed = schema.safeParse(json);
  if (parsed.success) return { ok: true, value: parsed.data };
  const reason = parsed.error.issues
    .map((i) => (i.path.length > 0 ? `${i.path.join(".")}: ${i.message}` : i.message))
    .join("; ");
  return { ok: false, reason: `invalid payload: ${reason}` };
}
