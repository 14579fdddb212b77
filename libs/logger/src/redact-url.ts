/**
 * Hides the user part of every URL in `text`: `nats://user:pass@host` and `nats://token@host` become
 * `nats://***@host`. For log lines and messages that show a URL a person configured.
 */
export function redactUrl(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s,]*@/gi, "$1***@");
}
