import { notifySeverities, type NotifyFilter } from "@vmbs/contracts";
import type { Notification } from "./render-event.js";

/** `*` matches any run of characters, `?` one; everything else literally; the whole name must match. */
export function globMatch(pattern: string, text: string): boolean {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${re}$`, "s").test(text);
}

const anyMatch = (patterns: string[], text: string | undefined): boolean =>
  patterns.length === 0 || (text !== undefined && patterns.some((p) => globMatch(p, text)));

/** Whether a target with this filter is sent the notification (severity at least its minimum, lists match). */
export function matchesFilter(filter: NotifyFilter, n: Notification): boolean {
  // A run's summary is wanted or not as a whole, whatever its severity.
  if (n.service === "notify" && n.type === "digest") return filter.digest && anyMatch(filter.hosts, n.host);
  return (
    notifySeverities.indexOf(n.severity) >= notifySeverities.indexOf(filter.minSeverity) &&
    (filter.events.length === 0 || filter.events.some((p) => globMatch(p, n.type) || globMatch(p, `${n.service}.${n.type}`))) &&
    anyMatch(filter.hosts, n.host) &&
    anyMatch(filter.domains, n.domain)
  );
}
