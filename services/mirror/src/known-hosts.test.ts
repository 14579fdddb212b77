import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import {
  fingerprint,
  hostsFieldMatches,
  judgeHostKey,
  knownHostName,
  knownHostsLine,
  parseKnownHosts,
  preferredHostKeyAlgorithms,
  verifyHostKey,
} from "./known-hosts.js";
import type { HostKeyPolicy } from "@vmbs/config";

// Made with ssh-keygen; the hashed lines by `ssh-keygen -H` over "nas.example ..." and "[10.0.0.5]:2222 ...".
const ED = "AAAAC3NzaC1lZDI1NTE5AAAAIGZ23DMGlCdz7MaQoq5o47LsZD9BVWKtwGjsdq45JFIH";
const ED_FP = "SHA256:22njvZdy+ZlDfZr367qsKHzHgAVH+9okSHz31JnRdaA";
const EC = "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBMqCZTFL1qyQmoeewguHdxt5JZ7kqFFHxV1p6e8eKdgX7ZPTNHnx6J2eAf0yk0kDgo+pxTABOvymY42anv2YEqE=";
const HASHED_NAS = "|1|FsKpp/jdTO9aqvnXLt0GbwZpX+Q=|5bhcwUd7YLg3be5jzxB8sKLiSx0=";
const HASHED_PORT = "|1|Cl1JXsfuBo2+UZpurW4W7kpDQMU=|vrZWfuYpODeBPmvM24PZelIU0OU=";
const ed = Buffer.from(ED, "base64");
const ec = Buffer.from(EC, "base64");

describe("known_hosts", () => {
  it("names a host as ssh looks it up, and fingerprints keys as OpenSSH prints them", () => {
    assert.equal(knownHostName("NAS.example", 22), "nas.example");
    assert.equal(knownHostName("10.0.0.5", 2222), "[10.0.0.5]:2222");
    assert.equal(fingerprint(ed), ED_FP);
  });

  it("parses lines: markers, comments and malformed lines", () => {
    const text = [
      "# comment",
      "",
      `nas.example,10.0.0.5 ssh-ed25519 ${ED} root@nas`,
      `  @revoked * ecdsa-sha2-nistp256 ${EC}`,
      `@cert-authority *.example ssh-ed25519 ${ED}`,
      `@bogus nas ssh-ed25519 ${ED}`,
      `nas ssh-rsa ${ED}`, // the blob says ed25519
      "nas ssh-ed25519 not*base64",
      "nas ssh-ed25519",
      `${HASHED_NAS} ssh-ed25519 ${ED}`,
    ].join("\n");
    const got = parseKnownHosts(text, "/kh").map((e) => [e.marker ?? "", e.hosts, e.keyType, e.line]);
    assert.deepEqual(got, [
      ["", "nas.example,10.0.0.5", "ssh-ed25519", 3],
      ["revoked", "*", "ecdsa-sha2-nistp256", 4],
      ["cert-authority", "*.example", "ssh-ed25519", 5],
      ["", HASHED_NAS, "ssh-ed25519", 10],
    ]);
  });

  it("matches host fields: lists, wildcards, negation, [host]:port and hashed entries", () => {
    const cases: [string, string, boolean][] = [
      ["nas.example,10.0.0.5", "10.0.0.5", true],
      ["nas.example,10.0.0.5", "nas", false],
      ["NAS.Example", "nas.example", true],
      ["*.example", "nas.example", true],
      ["nas?", "nas1", true],
      ["nas?", "nas12", false],
      ["*.example,!evil.example", "evil.example", false],
      ["*.example,!evil.example", "good.example", true],
      ["[10.0.0.5]:2222", "[10.0.0.5]:2222", true],
      ["[10.0.0.5]:2222", "10.0.0.5", false],
      ["10.0.0.5", "[10.0.0.5]:2222", false],
      ["[10.0.0.5]:*", "[10.0.0.5]:2222", true],
      ["a.b", "axb", false],
      [HASHED_NAS, "nas.example", true],
      [HASHED_NAS, "nas.example2", false],
      [HASHED_PORT, "[10.0.0.5]:2222", true],
      [HASHED_PORT, "10.0.0.5", false],
    ];
    for (const [hosts, name, want] of cases) assert.equal(hostsFieldMatches(hosts, name), want, `${hosts} vs ${name}`);
  });

  it("judges a presented key: known, unknown, changed (other key or other type), revoked", () => {
    const entries = parseKnownHosts(
      [`${HASHED_PORT} ssh-ed25519 ${ED}`, `nas.example ecdsa-sha2-nistp256 ${EC}`, `@revoked old.example ssh-ed25519 ${ED}`, `@cert-authority * ecdsa-sha2-nistp256 ${EC}`].join("\n"),
      "/kh",
    );
    const cases: [string, Buffer, string][] = [
      ["[10.0.0.5]:2222", ed, "known"],
      ["[10.0.0.5]:2222", ec, "changed"],
      ["nas.example", ec, "known"],
      ["nas.example", ed, "changed"],
      ["10.0.0.5", ec, "unknown"],
      ["old.example", ed, "revoked"],
      ["other.example", ec, "unknown"],
    ];
    for (const [name, key, want] of cases) assert.equal(judgeHostKey(entries, name, key).status, want, name);
    assert.deepEqual(preferredHostKeyAlgorithms(entries, "nas.example"), ["ecdsa-sha2-nistp256"]);
    assert.deepEqual(preferredHostKeyAlgorithms(parseKnownHosts(`h ssh-rsa ${rsaBlob()}`, "/kh"), "h"), ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]);
    assert.deepEqual(preferredHostKeyAlgorithms(entries, "other.example"), []);
  });

  it("writes lines OpenSSH finds: plain and hashed, [host]:port", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vmbs-kh-"));
    try {
      for (const hash of [false, true]) {
        const file = join(dir, `kh-${hash}`);
        const line = knownHostsLine("[10.0.0.5]:2222", ed, hash);
        assert.equal(line.startsWith("|1|"), hash);
        await writeFile(file, line);
        assert.equal(judgeHostKey(parseKnownHosts(line, file), "[10.0.0.5]:2222", ed).status, "known");
        const found = await execa("ssh-keygen", ["-F", "[10.0.0.5]:2222", "-f", file], { reject: false, timeout: 10_000 });
        assert.equal(found.exitCode, 0, `ssh-keygen -F finds the ${hash ? "hashed" : "plain"} line`);
        assert.match(found.stdout, new RegExp(ED.slice(0, 40).replace(/[+/]/g, "\\$&")));
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("verifies: strict refuses unknown; accept-new records then enforces; a changed key names host and fingerprints", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vmbs-kh-"));
    try {
      const file = join(dir, "sub", "known_hosts");
      const strict: HostKeyPolicy = { mode: "strict", userFiles: [file], globalFiles: [], hashNew: false };
      await assert.rejects(verifyHostKey(strict, "nas", 2222, ed), /host key of \[nas\]:2222 \(ssh-ed25519 SHA256:.*\) is not in known_hosts .*refuses unknown hosts/);
      const acceptNew: HostKeyPolicy = { ...strict, mode: "accept-new" };
      await Promise.all([verifyHostKey(acceptNew, "nas", 2222, ed), verifyHostKey(acceptNew, "nas", 2222, ed)]);
      assert.equal(await readFile(file, "utf8"), `[nas]:2222 ssh-ed25519 ${ED}\n`, "recorded once, though two connections raced");
      await verifyHostKey(strict, "nas", 2222, ed);
      for (const policy of [strict, acceptNew]) {
        await assert.rejects(verifyHostKey(policy, "NAS", 2222, ec), (err: Error) => {
          assert.equal(err.name, "HostKeyError");
          assert.match(err.message, /host key of \[nas\]:2222 has CHANGED/);
          assert.ok(err.message.includes(`offered ecdsa-sha2-nistp256 ${fingerprint(ec)}`), err.message);
          assert.ok(err.message.includes(`known_hosts has ssh-ed25519 ${ED_FP} (${file}:1)`), err.message);
          return true;
        });
      }
      assert.equal(await readFile(file, "utf8"), `[nas]:2222 ssh-ed25519 ${ED}\n`, "a changed key is never recorded");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/** A syntactically valid ssh-rsa blob (type string, e, n); only its type matters here. */
function rsaBlob(): string {
  const str = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
  return Buffer.concat([str(Buffer.from("ssh-rsa")), str(Buffer.from([1, 0, 1])), str(Buffer.alloc(65, 7))]).toString("base64");
}
