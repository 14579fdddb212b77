/** Settings whose value is a secret: never shown in a message or log. */
const secretSettings = new Set(["NATS_PASSWORD", "NATS_TOKEN"]);

/**
 * Hides the user part of every URL in `text`: `nats://user:pass@host` and `nats://token@host` become
 * `nats://***@host`. For log lines and messages that show a URL a person configured.
 */
export function redactUrl(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s,]*@/gi, "$1***@");
}

/** A setting's value as it may be shown: secrets masked, credentials in URLs hidden. */
export function displayValue(name: string, value: string): string {
  return secretSettings.has(name) && value !== "" ? "***" : redactUrl(value);
}
