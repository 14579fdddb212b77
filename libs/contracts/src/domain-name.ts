import { z } from "zod";

/** Longest accepted domain name in UTF-8 bytes: it becomes a folder name (255 bytes) plus an archive suffix. */
const maxDomainNameBytes = 200;

/**
 * A libvirt domain name as it may appear in a command. It names a folder under the backup root, so it
 * must be a single path segment: no `/`, no NUL or control characters, not `.` or `..`.
 * Spaces and non-ASCII letters are fine.
 */
export const domainNameSchema = z
  .string({ error: "domain must be a string" })
  .min(1, "domain must not be empty")
  .refine((s) => Buffer.byteLength(s, "utf8") <= maxDomainNameBytes, {
    error: `domain name is longer than ${maxDomainNameBytes} bytes`,
  })
  // eslint-disable-next-line no-control-regex
  .refine((s) => !/[\u0000-\u001f\u007f/]/.test(s), { error: "domain name must not contain '/' or control characters" })
  .refine((s) => s !== "." && s !== ".." && s.trim() === s, {
    error: "domain name must not be '.' or '..' nor start or end with whitespace",
  });
