import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { rolePermissions, roleId, roleInboxPrefix, type BusRole } from "./roles.js";
import { subjectMatches } from "./subjects.js";

const mayPublish = (role: BusRole, subject: string) => rolePermissions(role).publish.some((p) => subjectMatches(p, subject));
const maySubscribe = (role: BusRole, subject: string) => rolePermissions(role).subscribe.some((p) => subjectMatches(p, subject));

describe("bus role permissions", () => {
  const hv1: BusRole = { kind: "agent", host: "hv1" };
  const hv2: BusRole = { kind: "agent", host: "hv2", sharedRoots: ["hv1"] };
  const scheduler: BusRole = { kind: "scheduler" };
  const notifier: BusRole = { kind: "notifier" };
  const mirror: BusRole = { kind: "mirror", host: "hv1" };
  const restore: BusRole = { kind: "restore", host: "hv1" };
  const publishRows: [string, BusRole, string, boolean][] = [
    ["agent: its own event", hv1, "vmbs.evt.backup.hv1.completed", true],
    ["agent: its chain event", hv1, "vmbs.evt.chain.hv1.attention", true],
    ["agent: its dry run's planned chain event", hv1, "vmbs.evt.chain.hv1.planned", true],
    ["agent: another host's event", hv1, "vmbs.evt.backup.hv2.completed", false],
    ["agent: a mirror event of its host", hv1, "vmbs.evt.mirror.hv1.completed", false],
    ["agent: any command", hv1, "vmbs.cmd.backup.hv1", false],
    ["agent: its lease key", hv1, "$KV.vmbs_chain_leases.hv1.0123", true],
    ["agent: another host's lease key", hv1, "$KV.vmbs_chain_leases.hv2.0123", false],
    ["agent sharing hv1's root: hv1's lease key", hv2, "$KV.vmbs_chain_leases.hv1.0123", true],
    ["agent: its inventory key", hv1, "$KV.vmbs_hosts.hv1", true],
    ["agent: another inventory key", hv1, "$KV.vmbs_hosts.hv2", false],
    ["agent: its command outcome", hv1, "$KV.vmbs_command_outcomes.hv1.ab12", true],
    ["agent: its presence key", hv1, "$KV.vmbs_agent_presence.hv1", true],
    ["agent: fetching from its durable", hv1, "$JS.API.CONSUMER.MSG.NEXT.VMBS_CMD.backup-agent-hv1", true],
    ["agent: creating its durable (set-up makes it; the body could set deliver_subject)", hv1, "$JS.API.CONSUMER.CREATE.VMBS_CMD.backup-agent-hv1.vmbs.cmd.backup.hv1", false],
    ["agent: a consumer on its own KV key (a push consumer could deliver anywhere)", hv1, "$JS.API.CONSUMER.CREATE.KV_vmbs_hosts.x.$KV.vmbs_hosts.hv1", false],
    ["agent: an ephemeral consumer on its own KV key", hv1, "$JS.API.CONSUMER.CREATE.KV_vmbs_agent_state", false],
    ["agent: reading a bucket it writes (message gets)", hv1, "$JS.API.STREAM.MSG.GET.KV_vmbs_hosts", true],
    ["agent: a direct get (its answer goes raw to any reply subject, the JetStream API's too)", hv1, "$JS.API.DIRECT.GET.KV_vmbs_hosts.$KV.vmbs_hosts.hv1", false],
    ["agent: a direct get's body form", hv1, "$JS.API.DIRECT.GET.KV_vmbs_hosts", false],
    ["agent: reading a bucket it has no key in", hv1, "$JS.API.STREAM.MSG.GET.KV_vmbs_status", false],
    ["agent: stream info (subjects_filter counts every host's events)", hv1, "$JS.API.STREAM.INFO.VMBS_EVT", false],
    ["agent: creating a stream", hv1, "$JS.API.STREAM.CREATE.VMBS_EVT", false],
    ["agent: creating a bucket", hv1, "$JS.API.STREAM.CREATE.KV_vmbs_hosts", false],
    ["scheduler: walking the inventory bucket (listing hosts)", scheduler, "$JS.API.STREAM.MSG.GET.KV_vmbs_hosts", true],
    ["scheduler: a direct get of an inventory", scheduler, "$JS.API.DIRECT.GET.KV_vmbs_hosts.$KV.vmbs_hosts.hv1", false],
    ["agent: its durable re-pointed at another host", hv1, "$JS.API.CONSUMER.CREATE.VMBS_CMD.backup-agent-hv1.vmbs.cmd.backup.hv2", false],
    ["agent: the legacy durable create (any filter)", hv1, "$JS.API.CONSUMER.DURABLE.CREATE.VMBS_CMD.backup-agent-hv1", false],
    ["agent: another host's durable", hv1, "$JS.API.CONSUMER.MSG.NEXT.VMBS_CMD.backup-agent-hv2", false],
    ["agent: stream delete", hv1, "$JS.API.STREAM.DELETE.VMBS_EVT", false],
    ["agent: stream update", hv1, "$JS.API.STREAM.UPDATE.VMBS_EVT", false],
    ["agent: consumer delete", hv1, "$JS.API.CONSUMER.DELETE.VMBS_CMD.backup-agent-hv1", false],
    ["scheduler: a backup command", scheduler, "vmbs.cmd.backup.hv7", true],
    ["scheduler: a rotate command", scheduler, "vmbs.cmd.rotate.hv7", false],
    ["scheduler: an inventory write", scheduler, "$KV.vmbs_hosts.hv7", false],
    ["notifier: its failure event", notifier, "vmbs.evt.notify.hv1.failed", true],
    ["notifier: a backup event", notifier, "vmbs.evt.backup.hv1.failed", false],
    ["mirror: its event", mirror, "vmbs.evt.mirror.hv1.completed", true],
    ["mirror: its dry run's planned event", mirror, "vmbs.evt.mirror.hv1.planned", true],
    ["mirror: a backup event", mirror, "vmbs.evt.backup.hv1.completed", false],
    ["restore: a drill event", restore, "vmbs.evt.drill.hv1.failed", true],
    ["scheduler: a drill command (DRILL_SCHEDULE)", scheduler, "vmbs.cmd.drill.hv7", true],
    ["restore: fetching from its drill durable", restore, "$JS.API.CONSUMER.MSG.NEXT.VMBS_CMD.drill-hv1", true],
    ["restore: creating its drill durable", restore, "$JS.API.CONSUMER.CREATE.VMBS_CMD.drill-hv1.vmbs.cmd.drill.hv1", false],
    ["mirror: a consumer on a lease key", mirror, "$JS.API.CONSUMER.CREATE.KV_vmbs_chain_leases.x.$KV.vmbs_chain_leases.hv1.>", false],
    ["notifier: creating its durable", notifier, "$JS.API.CONSUMER.CREATE.VMBS_EVT.notifier.vmbs.evt.>", false],
    ["restore: a drill durable re-pointed at another host", restore, "$JS.API.CONSUMER.CREATE.VMBS_CMD.drill-hv1.vmbs.cmd.drill.hv2", false],
    ["restore: a drill command", restore, "vmbs.cmd.drill.hv1", false],
    ["operator: anything", { kind: "operator" }, "$JS.API.STREAM.DELETE.VMBS_EVT", true],
  ];
  for (const [name, role, subject, allowed] of publishRows)
    it(`${allowed ? "allows" : "refuses"} ${name}`, () => assert.equal(mayPublish(role, subject), allowed));

  const subscribeRows: [string, BusRole, string, boolean][] = [
    ["agent: its inbox", hv1, `${roleInboxPrefix(hv1)}.abc.1`, true],
    ["agent: every inbox", hv1, "_INBOX.scheduler.abc", false],
    ["agent: commands", hv1, "vmbs.cmd.backup.hv1", false],
    ["restore: its endpoints", restore, "vmbs.svc.restore.hv1.list", true],
    ["restore: another host's endpoints", restore, "vmbs.svc.restore.hv2.list", false],
  ];
  for (const [name, role, subject, allowed] of subscribeRows)
    it(`${allowed ? "allows" : "refuses"} subscribing ${name}`, () => assert.equal(maySubscribe(role, subject), allowed));

  it("names roles and refuses a host id that is not one token", () => {
    assert.equal(roleId(hv1), "agent-hv1");
    assert.equal(roleInboxPrefix(scheduler), "_INBOX.scheduler");
    assert.throws(() => rolePermissions({ kind: "agent", host: "a.>" }), /invalid host id/);
    assert.throws(() => rolePermissions({ kind: "agent", host: "a", sharedRoots: ["*"] }), /invalid host id/);
  });
});
