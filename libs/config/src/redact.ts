import { redactUrl } from "@vmbs/logger";
import { notifyUrlLabel } from "./notify-targets.js";

/** Settings whose value is a secret: never shown in a message or log. */
const secretSettings = new Set(["NATS_PASSWORD", "NATS_TOKEN"]);

/** A setting's value as it may be shown: secrets masked, credentials in URLs hidden. */
export function displayValue(name: string, value: string): string {
  // Notification URLs carry tokens in their paths and queries too: only scheme and host are shown.
  if (name === "NOTIFY_URLS") return value.trim().split(/\s+/).filter(Boolean).map(notifyUrlLabel).join(" ");
  return secretSettings.has(name) && value !== "" ? "***" : redactUrl(value);
}
