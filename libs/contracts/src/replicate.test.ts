import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parsePayload } from "./parse-payload.js";
import { parseLibvirtTarget, replicateRequestSchema } from "./replicate.js";

describe("replicate contract: target libvirt URIs", () => {
  const accepted: [string, object][] = [
    ["qemu:///system", { kind: "local" }],
    ["qemu:///session", { kind: "local" }],
    ["qemu+ssh://hv2/system", { kind: "ssh", host: "hv2", noVerify: false }],
    ["qemu+ssh://root@hv2.lan:2222/system?keyfile=/root/.ssh/id_ed25519&no_verify=1&known_hosts=/etc/vmbs/known", { kind: "ssh", host: "hv2.lan", user: "root", port: 2222, keyFile: "/root/.ssh/id_ed25519", knownHosts: "/etc/vmbs/known", noVerify: true }],
    ["qemu+ssh://10.0.0.2/system?no_verify=0", { kind: "ssh", host: "10.0.0.2", noVerify: false }],
  ];
  for (const [uri, target] of accepted)
    it(`accepts ${uri}`, () => {
      assert.deepEqual(parseLibvirtTarget(uri), { ok: true, target });
      assert.ok(replicateRequestSchema.safeParse({ domain: "web", as: "web2", to: uri }).success);
    });

  const refused: [string, string][] = [
    ["qemu+ext:///system?command=/tmp/evil", "the ext transport runs a program"],
    ["qemu+ssh://hv2/system?command=/tmp/evil", "ssh's command= names the ssh binary"],
    ["qemu+ssh://hv2/system?netcat=/tmp/evil", "netcat= runs on the remote side"],
    ["qemu+ssh://hv2/system?socket=/tmp/s", "socket="],
    ["qemu+ssh://hv2/system?keyfile=/k&keyfile=/j", "a parameter twice"],
    ["qemu+ssh://hv2/system?keyfile=relative", "a relative keyfile"],
    ["qemu+ssh://hv2/system?keyfile=/k%20-oProxyCommand=x", "percent-encoding"],
    ["qemu+ssh://hv2/system?no_verify=yes", "no_verify other than 0/1"],
    ["qemu+ssh://hv2/system?", "an empty query"],
    ["qemu+ssh://-oProxyCommand=touch%20x/system", "a host that ssh reads as an option"],
    ["qemu+ssh://-oProxyCommand@hv2/system", "a user that ssh reads as an option"],
    ["qemu+ssh://hv2:0/system", "port 0"],
    ["qemu+ssh://hv2:70000/system", "a port out of range"],
    ["qemu+ssh://hv2/session", "another host's session"],
    ["qemu+tcp://hv2/system", "tcp"],
    ["qemu+tls://hv2/system", "tls"],
    ["qemu+unix:///system?socket=/tmp/s", "unix with a socket"],
    ["qemu+libssh2://hv2/system?known_hosts_verify=ignore", "libssh2"],
    ["test:///default", "another driver"],
    ["qemu:///system?x=1", "a local URI with parameters"],
    ["qemu+ssh://hv2/system\nx", "a newline"],
  ];
  for (const [uri, what] of refused)
    it(`refuses ${what}: ${JSON.stringify(uri)}`, () => {
      assert.equal(parseLibvirtTarget(uri).ok, false);
      const r = parsePayload(replicateRequestSchema, JSON.stringify({ domain: "web", as: "web2", to: uri }));
      assert.match(r.ok ? "accepted" : r.reason, /^invalid payload: to: /);
    });

  it("refuses a NUL byte in diskDir", () => {
    const r = parsePayload(replicateRequestSchema, JSON.stringify({ domain: "web", as: "web2", diskDir: "/var/lib/libvirt/images\u0000/etc" }));
    assert.match(r.ok ? "accepted" : r.reason, /diskDir: must not contain a NUL byte/);
  });
});
