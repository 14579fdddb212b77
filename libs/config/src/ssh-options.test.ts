import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { homedir } from "node:os";
import { parseSshOptions, sshOptionsWithHostKeyPolicy } from "./ssh-options.js";

describe("SSH_OPTIONS", () => {
  it("reads port, keys, user and timeout from every spelling users write (the first value wins, as in ssh)", () => {
    const cases: [string[], Partial<ReturnType<typeof parseSshOptions>>][] = [
      [["-q", "-o", "IdentityFile=/private/hostname.key", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"], { port: 22, identityFiles: ["/private/hostname.key"], connectTimeoutMs: 10_000 }],
      [["-p", "2222", "-i", "/k"], { port: 2222, identityFiles: ["/k"] }],
      [["-p2222", "-i/k"], { port: 2222, identityFiles: ["/k"] }],
      [["-oPort=2022", "-o", "identityfile = /k2", "-o", "ConnectTimeout=3"], { port: 2022, identityFiles: ["/k2"], connectTimeoutMs: 3000 }],
      [["-o", "Port", "2023", "-l", "backup"], { port: 2023, user: "backup" }],
      [["-i", "~/.ssh/id_ed25519"], { identityFiles: [`${homedir()}/.ssh/id_ed25519`] }],
      [["-o", "Port 2024", "-o", "User=u"], { port: 2024, user: "u" }],
      [["-p", "2222", "-o", "Port=2022", "-i", "/a", "-i", "/b"], { port: 2222, identityFiles: ["/a", "/b"] }],
    ];
    for (const [words, want] of cases) {
      const got = parseSshOptions(words);
      for (const [k, v] of Object.entries(want)) assert.deepEqual(got[k as keyof typeof got], v, `${words.join(" ")}: ${k}`);
    }
    assert.throws(() => parseSshOptions(["-p", "x"]), /invalid port/);
  });

  it("reads the known_hosts policy; the seed's StrictHostKeyChecking=no is accept-new, never accept-anything", () => {
    const home = homedir();
    const userDefault = [`${home}/.ssh/known_hosts`, `${home}/.ssh/known_hosts2`];
    const globalDefault = ["/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"];
    const cases: [string[], ReturnType<typeof parseSshOptions>["hostKeys"]][] = [
      [[], { mode: "strict", userFiles: userDefault, globalFiles: globalDefault, hashNew: false }],
      [["-o", "StrictHostKeyChecking=no"], { mode: "accept-new", userFiles: userDefault, globalFiles: globalDefault, hashNew: false }],
      [["-oStrictHostKeyChecking=off", "-o", "HashKnownHosts=yes"], { mode: "accept-new", userFiles: userDefault, globalFiles: globalDefault, hashNew: true }],
      [["-o", "StrictHostKeyChecking", "accept-new"], { mode: "accept-new", userFiles: userDefault, globalFiles: globalDefault, hashNew: false }],
      [["-o", "StrictHostKeyChecking=ASK"], { mode: "strict", userFiles: userDefault, globalFiles: globalDefault, hashNew: false }],
      [["-o", "StrictHostKeyChecking=yes", "-o", "StrictHostKeyChecking=no"], { mode: "strict", userFiles: userDefault, globalFiles: globalDefault, hashNew: false }],
      [["-o", "UserKnownHostsFile ~/kh /etc/kh2", "-o", "GlobalKnownHostsFile=none"], { mode: "strict", userFiles: [`${home}/kh`, "/etc/kh2"], globalFiles: [], hashNew: false }],
      [["-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=/dev/null"], { mode: "strict", userFiles: [], globalFiles: globalDefault, hashNew: false }],
    ];
    for (const [words, want] of cases) assert.deepEqual(parseSshOptions(words).hostKeys, want, words.join(" "));
    assert.throws(() => parseSshOptions(["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]), /every host key would be accepted/);
    assert.throws(() => parseSshOptions(["-o", "StrictHostKeyChecking=maybe"]), /invalid StrictHostKeyChecking "maybe"/);
    assert.throws(() => parseSshOptions(["-o", "UserKnownHostsFile=%d/.ssh/kh"]), /%-tokens/);
  });

  it("gives every ssh we run the same known_hosts policy, replacing the user's spelling of it", () => {
    const seed = ["-q", "-o", "IdentityFile=/k", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "ConnectTimeout=10"];
    const home = homedir();
    assert.deepEqual(sshOptionsWithHostKeyPolicy(seed), [
      "-o", "StrictHostKeyChecking=accept-new",
      "-o", `UserKnownHostsFile=${home}/.ssh/known_hosts ${home}/.ssh/known_hosts2`,
      "-o", "GlobalKnownHostsFile=/etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2",
      "-q", "-o", "IdentityFile=/k", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
    ]);
    assert.deepEqual(sshOptionsWithHostKeyPolicy(["-oStrictHostKeyChecking=yes", "-o", "UserKnownHostsFile", "~/kh", "-o", "GlobalKnownHostsFile=none", "-p", "2222"]), [
      "-o", "StrictHostKeyChecking=yes",
      "-o", `UserKnownHostsFile=${home}/kh`,
      "-o", "GlobalKnownHostsFile=none",
      "-p", "2222",
    ]);
  });

});
