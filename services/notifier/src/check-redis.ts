import { Redis } from "ioredis";
import { redactUrl } from "@vmbs/logger";
import { redisOptions } from "./delivery-queue.js";
import { VmbsError } from "@vmbs/contracts";

/** REDIS_URL did not answer at start-up (exit 69 in the CLI: try again later). */
export class RedisUnavailableError extends VmbsError {
  /** REDIS_URL with its credentials hidden: neither it nor the message holds a password anything could print. */
  readonly url: string;
  constructor(redisUrl: string, options: ErrorOptions) {
    const url = redactUrl(redisUrl);
    super("unavailable", `REDIS_URL ${url} is not reachable`, options);
    this.url = url;
  }
}

/** Pings REDIS_URL once, so an unreachable Redis is a start-up refusal instead of a silent retry loop. */
export async function checkRedis(redisUrl: string, timeoutMs = 5_000): Promise<void> {
  const client = new Redis({ ...redisOptions(redisUrl), maxRetriesPerRequest: 0, lazyConnect: true, connectTimeout: timeoutMs, retryStrategy: () => null });
  client.on("error", () => undefined);
  try {
    await client.connect();
    await client.ping();
  } catch (err) {
    throw new RedisUnavailableError(redisUrl, { cause: err });
  } finally {
    client.disconnect();
  }
}
