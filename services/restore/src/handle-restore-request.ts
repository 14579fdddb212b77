import type { ServiceMsg } from "@nats-io/services";
import { isRedirectedStoredMessage } from "@vmbs/bus";
import { errorReplyStatus, type RestoreEndpoint } from "@vmbs/contracts";
import type { Logger } from "@vmbs/logger";
import { RestoreError } from "@vmbs/virt";
import type { EndpointHandler } from "./endpoint-handlers.js";

export interface RestoreRequestHandlerDeps {
  logger: Logger;
  endpoints: Record<RestoreEndpoint, EndpointHandler>;
  /** Requests served at once; more are answered busy. */
  maxConcurrent: number;
}

export interface RestoreRequestHandler {
  /** Serves one message that arrived on `endpoint` (whose subject is `subject`), without waiting for its reply. */
  handle(endpoint: RestoreEndpoint, subject: string, msg: ServiceMsg): void;
  /** Resolves once every request being served is answered. */
  settled(): Promise<void>;
}

const isRefusal = (err: unknown): boolean => errorReplyStatus(err) < 500;

/**
 * One request to a restore endpoint: served concurrently up to a bound, answered with its error's status
 * (errorReplyStatus: refusals 400, failures 500) in the Nats-Service-Error headers and a JSON `{ error }` body.
 */
export function createRestoreRequestHandler(deps: RestoreRequestHandlerDeps): RestoreRequestHandler {
  const { logger, maxConcurrent } = deps;
  const running = new Set<Promise<void>>();
  return {
    handle(endpoint, subject, msg) {
      // A JetStream push consumer delivers its stream's messages (their own subject kept) to any deliver
      // subject, and a direct get answers with a stored value on any reply subject (headers of a stored message,
      // no reply): only a request published to the endpoint's subject, awaiting a reply, is one. Nothing is
      // answered otherwise, since the reply subject of a delivery is the consumer's ack.
      if (msg.subject !== subject || !msg.reply || isRedirectedStoredMessage(msg.headers)) {
        logger.warn({ endpoint, subject: msg.subject }, "restore request ignored: not a request published to the endpoint's subject");
        return;
      }
      // A run takes minutes: requests are served concurrently, each chain guarded by its lease, up to a bound.
      if (running.size >= maxConcurrent) {
        logger.warn({ endpoint, maxConcurrent }, "restore request refused: busy");
        const busy = `busy: ${maxConcurrent} restore requests are being served; try again later`;
        msg.respondError(503, busy, JSON.stringify({ error: busy }));
        return;
      }
      const p = deps.endpoints[endpoint](msg).then(
        (reply) => void msg.respond(JSON.stringify(reply)),
        (err: unknown) => {
          if (!isRefusal(err) && !(err instanceof RestoreError)) logger.error({ err, endpoint }, "restore endpoint failed");
          const message = (err as Error).message;
          // A header holds one line (a multi-line message, e.g. a program's stderr, would lose the whole reply).
          msg.respondError(errorReplyStatus(err), message.replace(/[\r\n]+/g, " "), JSON.stringify({ error: message }));
        },
      );
      running.add(p);
      void p.finally(() => running.delete(p));
    },
    async settled() {
      await Promise.allSettled(running);
    },
  };
}
