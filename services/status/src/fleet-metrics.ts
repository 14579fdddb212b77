import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { FleetRecords } from "./fleet-records.js";
import type { FleetPolicy } from "./fleet-policy.js";
import { isAlive, isRpoBreached } from "./fleet-view.js";

export interface FleetMetrics {
  registry: Registry;
  /** A run folded in just now (a live observation: the histogram is not rebuilt after a restart). */
  observeRun(host: string, level: string, durationMs: number): void;
}

/** Buckets of backup durations, in seconds: from seconds (a small incremental) to hours (a large full). */
const durationBuckets = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400];

/**
 * The Prometheus metrics of the whole fleet, read from the status model at every scrape (so they are the same
 * numbers `vmbs status` shows, on whichever host the status service runs).
 */
export function createFleetMetrics(fleet: FleetRecords, policy: FleetPolicy): FleetMetrics {
  const registry = new Registry();
  const domains = () => [...fleet.domains.values()].flatMap((byDomain) => [...byDomain.values()]);
  const scheduledOf = (host: string, domain: string): boolean => fleet.hosts.get(host)?.domains.find((d) => d.name === domain)?.scheduled ?? false;
  const seconds = (iso: string): number => Date.parse(iso) / 1000;

  new Gauge({
    name: "vmbs_backup_last_success_timestamp_seconds",
    help: "When the domain's last backup completed (Unix time).",
    labelNames: ["host", "domain"],
    registers: [registry],
    collect() {
      this.reset();
      for (const d of domains()) if (d.lastBackup) this.set({ host: d.host, domain: d.domain }, seconds(d.lastBackup.at));
    },
  });
  new Counter({
    name: "vmbs_backups_total",
    help: "Backup runs by level (none: failed before the engine chose one) and outcome.",
    labelNames: ["host", "domain", "level", "outcome"],
    registers: [registry],
    collect() {
      this.reset();
      for (const d of domains())
        for (const [key, n] of Object.entries(d.runCounts)) {
          const [level, outcome] = key.split("/") as [string, string];
          this.inc({ host: d.host, domain: d.domain, level, outcome }, n);
        }
    },
  });
  new Counter({
    name: "vmbs_backup_bytes_total",
    help: "Bytes of data files written by the domain's backups.",
    labelNames: ["host", "domain"],
    registers: [registry],
    collect() {
      this.reset();
      for (const d of domains()) if (d.bytesTotal > 0) this.inc({ host: d.host, domain: d.domain }, d.bytesTotal);
    },
  });
  const duration = new Histogram({
    name: "vmbs_backup_duration_seconds",
    help: "Duration of completed backups seen since the status service started.",
    labelNames: ["host", "level"],
    buckets: durationBuckets,
    registers: [registry],
  });
  new Gauge({
    name: "vmbs_chain_length",
    help: "Checkpoints in the domain's active chain.",
    labelNames: ["host", "domain"],
    registers: [registry],
    collect() {
      this.reset();
      for (const d of domains()) this.set({ host: d.host, domain: d.domain }, d.chainLength);
    },
  });
  new Gauge({
    name: "vmbs_host_up",
    help: "1 while the host's agent heart-beats, else 0.",
    labelNames: ["host"],
    registers: [registry],
    collect() {
      this.reset();
      const now = new Date();
      for (const h of fleet.hosts.values()) this.set({ host: h.host }, isAlive(h, now, policy) ? 1 : 0);
    },
  });
  new Gauge({
    name: "vmbs_mirror_last_success_timestamp_seconds",
    help: "When the domain's mirror copy last synced (Unix time).",
    labelNames: ["host", "domain"],
    registers: [registry],
    collect() {
      this.reset();
      for (const d of domains()) if (d.mirror?.lastSyncAt) this.set({ host: d.host, domain: d.domain }, seconds(d.mirror.lastSyncAt));
    },
  });
  new Gauge({
    name: "vmbs_rpo_breached",
    help: "1 when a scheduled domain's last good backup is older than its RPO (BACKUP_RPO_MINUTES), else 0.",
    labelNames: ["host", "domain"],
    registers: [registry],
    collect() {
      this.reset();
      const now = new Date();
      for (const d of domains()) this.set({ host: d.host, domain: d.domain }, isRpoBreached(d, scheduledOf(d.host, d.domain), now, policy) ? 1 : 0);
    },
  });

  return {
    registry,
    observeRun(host, level, durationMs) {
      duration.observe({ host, level }, durationMs / 1000);
    },
  };
}
