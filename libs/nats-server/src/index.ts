/**
 * A nats-server child process: the one `vmbs start` runs when NATS_URL is unset, and the ones tests run (the lab,
 * the bus's and services' NATS-only tests). Not part of the bus client, which talks to any server.
 */
export { startNatsServer, renderServerConfig, type NatsServerOptions, type RunningNatsServer } from "./nats-server.js";
