import { connect, type NatsConnection } from "@nats-io/transport-node";

export type { NatsConnection } from "@nats-io/transport-node";

export class BusConnectError extends Error {
  constructor(url: string, options: ErrorOptions) {
    super(`cannot connect to NATS at ${url}`, options);
    this.name = "BusConnectError";
  }
}

/** Connects with endless reconnects, so a restarting nats-server doesn't take the services down with it. */
export async function connectBus(url: string, name: string): Promise<NatsConnection> {
  try {
    return await connect({ servers: url, name, maxReconnectAttempts: -1, reconnectTimeWait: 1000 });
  } catch (err) {
    throw new BusConnectError(url, { cause: err });
  }
}
