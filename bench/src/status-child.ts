/**
 * The status service alone in a process of its own, for fleet-scale.ts: its RSS is then the service's own.
 * (`vmbs status-service` is named in the CLI's usage but not wired to a command yet, so the bench starts it here.)
 *
 *   VMBS_BENCH_NATS_URL=… VMBS_BENCH_SEED=… VMBS_BENCH_INBOX=… node bench/dist/status-child.js
 *
 * Connects with the status role's credential, starts the service as `vmbs start` would (BACKUP_SCHEDULE 03:00 daily,
 * RPO 26 h, heartbeats read every 10 s), prints one line `ready <ms since start>` on stdout, and stops on SIGTERM.
 */
import { connectBus } from "@vmbs/bus";
import { createLogger } from "@vmbs/logger";
import { createFleetPolicy, startStatusService } from "@vmbs/status";

const t0 = performance.now();
const env = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const nc = await connectBus(env("VMBS_BENCH_NATS_URL"), "bench-status-service", { nkeySeed: env("VMBS_BENCH_SEED"), inboxPrefix: env("VMBS_BENCH_INBOX") });
const logger = createLogger({ name: "bench-status", level: "warn", stream: process.stderr });
const service = await startStatusService({ nc, policy: createFleetPolicy({ schedule: "0 3 * * *", rpoMinutes: 26 * 60 }), logger, listen: null });
process.stdout.write(`ready ${(performance.now() - t0).toFixed(0)}\n`);
process.once("SIGTERM", () => {
  void service
    .stop()
    .then(() => nc.close())
    .finally(() => process.exit(0));
});
