import { redactUrl } from "@vmbs/logger";

/** Settings whose value is a secret: never shown in a message or log. */
const secretSettings = new Set(["NATS_PASSWORD", "NATS_TOKEN"]);

/** A setting's value as it may be shown: secrets masked, credentials in URLs hidden. */
export function displayValue(name: string, value: string): string {
  return secretSettings.has(name) && value !== "" ? "***" : redactUrl(value);
}
