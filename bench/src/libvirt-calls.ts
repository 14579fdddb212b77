/**
 * Cost of one libvirt question, asked the two ways side by side: a `virsh` process per call (how the agent
 * used to ask) against the agent's long-lived connection (libs/virt's bridge).
 *
 *   node bench/dist/libvirt-calls.js [--calls N, default 50]     (or `npm run bench:libvirt`)
 *
 * One lab domain; each round asks for its state and its checkpoint list, the two questions of every
 * pre-backup check, alternating which way goes first. Prints ms per call for both and their ratio.
 */
import { performance } from "node:perf_hooks";
import { execa } from "execa";
import { positiveIntFlag } from "./cli-args.js";
import { createLibvirt } from "@vmbs/virt";
import { createLab } from "@vmbs/lab";

async function main(): Promise<void> {
  const calls = positiveIntFlag(process.argv.slice(2), "calls", 50);
  const lab = await createLab();
  const libvirt = createLibvirt(lab.uri);
  try {
    const { name } = await lab.createDomain();
    const virsh = (...args: string[]) => execa("virsh", ["--quiet", "-c", lab.uri, ...args], { stdin: "ignore" });
    await libvirt.domainState(name); // the bridge's one-off start is not what is measured
    let virshMs = 0;
    let bridgeMs = 0;
    for (let i = 0; i < calls; i++) {
      const viaVirsh = async () => {
        const t0 = performance.now();
        await virsh("domstate", "--domain", name);
        await virsh("checkpoint-list", "--domain", name, "--name", "--topological");
        virshMs += performance.now() - t0;
      };
      const viaBridge = async () => {
        const t0 = performance.now();
        await libvirt.domainState(name);
        await libvirt.checkpoints(name);
        bridgeMs += performance.now() - t0;
      };
      for (const run of i % 2 === 0 ? [viaVirsh, viaBridge] : [viaBridge, viaVirsh]) await run();
    }
    const perCall = (ms: number) => ms / (2 * calls);
    console.log(`${2 * calls} calls each (domain state + checkpoint list, alternating order)`);
    console.log(`virsh process per call: ${perCall(virshMs).toFixed(2)} ms/call`);
    console.log(`long-lived connection:  ${perCall(bridgeMs).toFixed(2)} ms/call`);
    console.log(`ratio virsh / connection: ${(virshMs / bridgeMs).toFixed(1)}`);
  } finally {
    await libvirt.close();
    await lab.cleanup();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`libvirt-calls: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
