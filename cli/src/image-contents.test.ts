// The Docker image ships no test code: no lab, no bench, no test files or test kits, no `testing` exports. Without a
// docker engine, this rebuilds the image's inputs the way the Dockerfile does: the build context (git's files minus
// .dockerignore), then `npm ci` on its manifests and `npm prune --omit=dev`, and inspects what is left.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { cp, mkdtemp, readdir, readFile, readlink, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, matchesGlob, posix } from "node:path";
import { fileURLToPath } from "node:url";

const repo = fileURLToPath(new URL("../../", import.meta.url));

/** Files Docker would send as build context: tracked and untracked-but-not-gitignored files, minus .dockerignore. */
async function buildContext(): Promise<string[]> {
  const patterns = (await readFile(join(repo, ".dockerignore"), "utf8"))
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  // Exceptions (!pattern) would need Docker's last-match-wins order; none are used, so refuse rather than misread one.
  assert.ok(!patterns.some((p) => p.startsWith("!")), ".dockerignore exceptions are not simulated here");
  const files = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard"], { cwd: repo, encoding: "utf8" })
    .split("\n")
    .filter((f) => f !== "" && existsSync(join(repo, f)));
  // A pattern that matches a folder leaves out everything in it.
  return files.filter((f) => !patterns.some((p) => matchesGlob(f, p) || matchesGlob(f, `${p}/**`)));
}

const npm = (cwd: string, ...args: string[]) =>
  execFileSync("npm", [...args, "--ignore-scripts", "--prefer-offline", "--no-audit", "--no-fund"], { cwd, stdio: "pipe" });

describe("Docker image contents", () => {
  let context: string[];
  let app: string;

  before(async () => {
    context = await buildContext();
    app = await mkdtemp(join(tmpdir(), "vmbs-image-"));
    // Stage 1 of the Dockerfile: only the npm manifests, at their paths.
    for (const f of context.filter((f) => /(^|\/)package(-lock)?\.json$/.test(f))) await cp(join(repo, f), join(app, f));
    npm(app, "ci");
    npm(app, "prune", "--omit=dev");
  });
  after(async () => {
    if (app) await rm(app, { recursive: true, force: true });
  });

  it("the build context holds no lab, bench, test files or test kits", () => {
    const testCode = context.filter((f) => /^(libs\/lab|bench)\/|\.test\.ts$|\/src\/testing\//.test(f));
    assert.deepEqual(testCode, []);
  });

  it("every tsconfig in the context references only projects in the context (so tsc -b cli builds without the lab)", async () => {
    for (const f of context.filter((f) => posix.basename(f) === "tsconfig.json")) {
      const { references = [] } = JSON.parse(await readFile(join(repo, f), "utf8")) as { references?: { path: string }[] };
      for (const { path } of references) {
        const target = posix.join(dirname(f), path);
        assert.ok(context.some((c) => c === target || c.startsWith(`${target}/`)), `${f} references ${path}, which the image does not have`);
      }
    }
  });

  it("the production node_modules link only product workspaces, none of them with a testing export", async () => {
    const linked = await readdir(join(app, "node_modules", "@vmbs"));
    assert.ok(linked.includes("cli"), `expected the product workspaces, got ${linked.join(", ")}`);
    assert.ok(!linked.includes("lab") && !linked.includes("bench"), `test workspaces installed: ${linked.join(", ")}`);
    for (const name of linked) {
      const target = await readlink(join(app, "node_modules", "@vmbs", name));
      const manifest = JSON.parse(await readFile(join(app, "node_modules", "@vmbs", name, "package.json"), "utf8")) as {
        exports?: Record<string, unknown>;
        dependencies?: Record<string, string>;
      };
      assert.deepEqual(Object.keys(manifest.exports ?? {}).filter((k) => k.includes("testing")), [], `${name} (${target}) exports test code`);
      assert.ok(!("@vmbs/lab" in (manifest.dependencies ?? {})), `${name} depends on the lab at run time`);
    }
  });
});
