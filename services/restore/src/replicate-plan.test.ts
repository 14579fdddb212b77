import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { parsePayload, replicateRequestSchema } from "@vmbs/contracts";
import { homedir } from "node:os";
import { copyImagePath, copyNvramPath, pickMacs, planReplication, ReplicateRefusedError, targetSshOptions, targetTransport, type PlanInput } from "./replicate-plan.js";

describe("replication plan (pure)", () => {
  const transports: [string, ReturnType<typeof targetTransport>["kind"], object?][] = [
    ["qemu:///system", "local"],
    ["qemu+ssh://root@hv2:2222/system?keyfile=/k/id&no_verify=1", "ssh", { host: "hv2", user: "root", port: 2222, keyFile: "/k/id", noVerify: true }],
    ["qemu+ssh://hv2/system", "ssh", { host: "hv2", noVerify: false }],
  ];
  for (const [uri, kind, fields] of transports)
    it(`target ${uri} is ${kind}`, () => {
      const t = targetTransport(uri);
      assert.equal(t.kind, kind);
      if (fields) assert.deepEqual(t, { kind, ...fields });
    });

  for (const uri of ["qemu+unix:///system", "qemu+tcp://hv2/system", "qemu+ext:///system?command=/tmp/evil", "qemu+ssh://-oProxyCommand=x/system"])
    it(`target ${uri} is refused`, () => assert.throws(() => targetTransport(uri), ReplicateRefusedError));

  it("ssh options: known_hosts names the known hosts file; SSH_OPTIONS carry the host key policy (the seed's no is accept-new)", () => {
    const t = targetTransport("qemu+ssh://hv2/system?known_hosts=/etc/vmbs/known");
    assert.ok(t.kind === "ssh");
    const home = homedir();
    assert.deepEqual(targetSshOptions(t, ["-o", "StrictHostKeyChecking=no", "-q"]), [
      "-o", "UserKnownHostsFile=/etc/vmbs/known", "-o", "BatchMode=yes",
      "-o", "StrictHostKeyChecking=accept-new",
      "-o", `UserKnownHostsFile=${home}/.ssh/known_hosts ${home}/.ssh/known_hosts2`,
      "-o", "GlobalKnownHostsFile=/etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2",
      "-q",
    ]);
  });

  it("ssh options: the URI's settings before SSH_OPTIONS, never a prompt", () => {
    const t = targetTransport("qemu+ssh://root@hv2:2222/system?keyfile=/k&no_verify=1");
    assert.ok(t.kind === "ssh");
    assert.deepEqual(targetSshOptions(t, ["-q", "-p", "22"]), [
      "-p", "2222", "-l", "root", "-i", "/k", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-q", "-p", "22",
    ]);
  });

  const macCases: { what: string; originals: (string | undefined)[]; policy: "keep" | "random" | ("keep" | "random")[]; taken: string[]; want: string[] }[] = [
    { what: "random skips MACs used on the target", originals: ["52:54:00:00:00:01"], policy: "random", taken: ["52:54:00:00:00:0a"], want: ["52:54:00:00:00:0b"] },
    { what: "keep keeps", originals: ["52:54:00:00:00:01", "52:54:00:00:00:02"], policy: "keep", taken: [], want: ["52:54:00:00:00:01", "52:54:00:00:00:02"] },
    { what: "per NIC", originals: ["52:54:00:00:00:01", "52:54:00:00:00:02"], policy: ["random", "keep"], taken: [], want: ["52:54:00:00:00:0a", "52:54:00:00:00:02"] },
    { what: "keep without a MAC gets a random one", originals: [undefined], policy: "keep", taken: [], want: ["52:54:00:00:00:0a"] },
    { what: "two random NICs never share one", originals: [undefined, undefined], policy: "random", taken: [], want: ["52:54:00:00:00:0a", "52:54:00:00:00:0b"] },
  ];
  for (const c of macCases)
    it(`MACs: ${c.what}`, () => {
      let n = 0;
      // Yields 0a, 0a, 0b, 0b, …: every candidate comes twice, so a collision is always tried.
      const random = () => `52:54:00:00:00:${(10 + Math.floor(n++ / 2)).toString(16).padStart(2, "0")}`;
      assert.deepEqual(pickMacs(c.originals, c.policy, new Set(c.taken), random), c.want);
    });

  it("MACs: a policy list of the wrong length is refused", () => {
    assert.throws(() => pickMacs(["52:54:00:00:00:01"], ["keep", "keep"], new Set(), () => "52:54:00:00:00:02"), ReplicateRefusedError);
  });

  it("names the copies after the new domain", () => {
    assert.equal(copyImagePath("/img", "web 2", { target: "vda", file: "/src/web.qcow2" }, "qcow2"), "/img/web 2.vda.qcow2");
    assert.equal(copyImagePath("/img", "web2", { target: "vdb", file: "/src/web-data.img" }, "raw"), "/img/web2.vdb.img");
    assert.equal(copyImagePath("/img", "web2", { target: "vdb", file: "/src/disk" }, "raw"), "/img/web2.vdb.raw");
    assert.equal(copyNvramPath("/var/lib/libvirt/qemu/nvram/web_VARS.fd", "web2"), "/var/lib/libvirt/qemu/nvram/web2_VARS.fd");
  });

  const base: PlanInput = {
    domain: "web", as: "web2", to: "qemu:///system", state: "shut off", copyDisks: true, consent: false, transport: { kind: "local" },
    disks: [{ disk: { target: "vda", file: "/img/web.qcow2" }, format: "qcow2", image: "/img/web2.vda.qcow2" }],
    otherDisks: [], nics: [{ mac: "52:54:00:00:00:01", policy: "random" }], conflicts: [],
  };
  const plans: { what: string; input: Partial<PlanInput>; refusal?: RegExp; step?: RegExp }[] = [
    { what: "a shut-off source is copied without a shutdown", input: {}, step: /^copy \/img\/web.qcow2 as qcow2 to \/img\/web2.vda.qcow2$/ },
    { what: "a running source without consent is refused", input: { state: "running" }, refusal: /web is running; .*consent/ },
    { what: "a running source with consent is shut down and started again", input: { state: "running", consent: true }, step: /^shut down web .*started again/ },
    { what: "no copy needs no consent", input: { state: "running", copyDisks: false }, step: /^keep \/img\/web2.vda.qcow2 \(not copied\)$/ },
    { what: "a taken name or file is refused", input: { conflicts: ["a domain named \"web2\" exists already"] }, refusal: /exists already/ },
    { what: "block disks cannot be copied", input: { otherDisks: ["vdz"] }, refusal: /vdz are not image files/ },
    { what: "ssh targets say so", input: { transport: { kind: "ssh", host: "hv2", noVerify: false } }, step: /to \/img\/web2.vda.qcow2 on hv2 \(over ssh\)$/ },
  ];
  for (const p of plans)
    it(`plan: ${p.what}`, () => {
      const out = planReplication({ ...base, ...p.input });
      if (p.refusal) assert.match(out.refusal ?? "", p.refusal);
      else assert.equal(out.refusal, undefined);
      if (p.step) assert.ok(out.steps.some((s) => p.step!.test(s)), out.steps.join("\n"));
      assert.match(out.steps.at(-1)!, /^define web2 on .* it is not started$/);
    });

  it("request: a new name is required, MAC policies are keep or random", () => {
    assert.ok(parsePayload(replicateRequestSchema, JSON.stringify({ domain: "web", as: "web2", mac: ["keep", "random"], to: "qemu+ssh://root@hv2/system" })).ok);
    for (const bad of [{ domain: "web" }, { domain: "web", as: "x", mac: "custom" }, { domain: "web", as: "../x" }, { domain: "web", as: "x", to: "hv2" }, { domain: "web", as: "x", diskDir: "rel" }])
      assert.equal(parsePayload(replicateRequestSchema, JSON.stringify(bad)).ok, false, JSON.stringify(bad));
  });
});
