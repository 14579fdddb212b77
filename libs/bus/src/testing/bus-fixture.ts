import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectBus, type NatsConnection } from "../connect-bus.js";
import { startNatsServer } from "@vmbs/nats-server";
import { ensureStreams } from "../topology.js";

/** A connection to a private nats-server for one test file. */
export interface BusFixture {
  nc: NatsConnection;
  stop(): Promise<void>;
}

/**
 * Starts a real nats-server (free port, throwaway store) with the product's streams and connects to it. For
 * libs/bus's own tests: @vmbs/lab's startTestNats wraps the same server but lab depends on bus (a cycle).
 */
export async function startBusFixture(name: string): Promise<BusFixture> {
  const storeDir = await mkdtemp(join(tmpdir(), `vmbs-${name}-store-`));
  const server = await startNatsServer({ storeDir });
  const nc = await connectBus(server.url, name);
  await ensureStreams(nc);
  return {
    nc,
    async stop() {
      await nc.close();
      await server.stop();
      await rm(storeDir, { recursive: true, force: true });
    },
  };
}
