import { z } from "zod";
import { validate as isValidCron } from "node-cron";
import { parseWordList } from "./word-list.js";

const onWords = new Set(["1", "true", "yes", "on", "y", "enabled"]);
const offWords = new Set(["", "0", "false", "no", "off", "n", "disabled"]);

/** An on/off flag. Unlike the seed, "false", "0" and "no" mean off; unset or empty means off. */
export const flag = () =>
  z
    .string()
    .default("")
    .transform((v, ctx) => {
      const word = v.trim().toLowerCase();
      if (onWords.has(word)) return true;
      if (offWords.has(word)) return false;
      ctx.addIssue({ code: "custom", message: "expected yes/no, true/false, 1/0 or on/off" });
      return z.NEVER;
    });

/** A whole number in [0, max], written with digits only (the seed accepted values like "3a"). */
export const count = (fallback: number, max: number) =>
  z
    .string()
    .default(String(fallback))
    .transform((v, ctx) => {
      const text = v.trim() === "" ? String(fallback) : v.trim();
      if (!/^\d+$/.test(text) || Number(text) > max) {
        ctx.addIssue({ code: "custom", message: `expected a whole number from 0 to ${max}` });
        return z.NEVER;
      }
      return Number(text);
    });

/** An optional whole number from `min` to `max` (unset or empty: undefined). */
export const optionalCount = (min: number, max: number) =>
  optionalText().transform((v, ctx) => {
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
      ctx.addIssue({ code: "custom", message: `expected a whole number from ${min} to ${max}` });
      return z.NEVER;
    }
    return Number(v);
  });

/** `host:port` (IPv6 in brackets) to listen on, port 0 = any free one (logged); empty = off (null). */
export const listenAddress = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((v, ctx) => {
      const text = v.trim();
      if (text === "") return null;
      const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(text);
      const port = m ? Number(m[2]) : 0;
      if (!m || port > 65_535) {
        ctx.addIssue({ code: "custom", message: "expected host:port (e.g. 127.0.0.1:9780) or nothing to turn it off" });
        return z.NEVER;
      }
      return { host: m[1]!.replace(/^\[|\]$/g, ""), port };
    });

/** A list of words, quotes allowed for names with spaces (see parseWordList). */
export const wordList = (fallback = "") =>
  z
    .string()
    .default(fallback)
    .transform((v, ctx) => {
      try {
        return parseWordList(v);
      } catch (err) {
        ctx.addIssue({ code: "custom", message: (err as Error).message });
        return z.NEVER;
      }
    });

/** A cron expression with 5 or 6 fields, or a macro such as `@daily`; empty means "off" when `optional`. */
export const cronExpression = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((v, ctx) => {
      const text = v.trim() === "" ? fallback : v.trim();
      if (text === "") return undefined;
      if (!isValidCron(text)) {
        ctx.addIssue({ code: "custom", message: 'expected a cron expression like "0 3 * * *" or a macro like @daily' });
        return z.NEVER;
      }
      return text;
    });

export const absolutePath = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((v) => (v.trim() === "" ? fallback : v.trim()))
    .refine((v) => v.startsWith("/"), { message: "expected an absolute path" });

/** An IANA time zone such as Europe/Berlin; empty = the machine's zone. */
export const timeZone = () =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      const text = v?.trim();
      if (!text) return undefined;
      try {
        new Intl.DateTimeFormat("en", { timeZone: text });
        return text;
      } catch {
        ctx.addIssue({ code: "custom", message: "unknown time zone (expected e.g. Europe/Berlin)" });
        return z.NEVER;
      }
    });

/** Empty string → undefined, so "unset" and "set to nothing" behave the same. */
export const optionalText = () =>
  z
    .string()
    .optional()
    .transform((v) => (v?.trim() ? v.trim() : undefined));

/** A NATS server URL as the node client takes it: `nats://` or `tls://`, a host, an optional port 1-65535. */
function isNatsServerUrl(text: string): boolean {
  // The client accepts a bare host:port and then assumes nats://.
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `nats://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    return false;
  }
  return (url.protocol === "nats:" || url.protocol === "tls:") && url.hostname !== "" && (url.pathname === "" || url.pathname === "/") && !url.search && !url.hash;
}

/** Unset or one or more NATS server URLs separated by commas (a cluster's seed list). */
export const natsUrlList = () =>
  optionalText().refine((v) => v === undefined || v.split(",").every((s) => isNatsServerUrl(s.trim())), {
    message: "expected nats://host:port (or tls://host:port; several separated by commas), or unset to let vmbs start run its own nats-server",
  });

/** An absolute path, or unset (empty = unset). */
export const optionalAbsolutePath = () =>
  optionalText().refine((v) => v === undefined || v.startsWith("/"), { message: "expected an absolute path" });
