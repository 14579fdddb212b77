import { readFileSync } from "node:fs";

/**
 * `vmbs --version`: the cli package's version and the Node it runs on (a bug report needs both). Read from
 * cli/package.json next to dist/, which the clone and the image both have.
 */
export function versionLine(): string {
  const manifest = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
  return `vmbs ${manifest.version} (Node ${process.version})`;
}
