/** `scheme://…` up to whitespace, the end, or a `,` that starts the next URL of a list (`nats://a,nats://b`). */
const urlToken = /([a-z][a-z0-9+.-]*:\/\/)(\S*?)(?=,[a-z][a-z0-9+.-]*:\/\/|\s|$)/gi;

/**
 * Hides the user part of every URL in `text`: `nats://user:pass@host` and `nats://token@host` become
 * `nats://***@host`. For log lines and messages that show a URL a person configured.
 *
 * The user part ends at the URL's LAST `@`: a password typed into an env var may hold a raw `@`, `,`, `/`, `?` or
 * `#`, so no character is trusted to end it. An `@` in a path or query hides the host too — the safe side.
 */
export function redactUrl(text: string): string {
  return text.replace(urlToken, (token: string, scheme: string, rest: string) => {
    const at = rest.lastIndexOf("@");
    return at < 0 ? token : `${scheme}***${rest.slice(at)}`;
  });
}
