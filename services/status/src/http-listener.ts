import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { domainHistoryRequestSchema, fleetStatusRequestSchema, type DomainHistory, type FleetStatus, type FleetStatusRequest } from "@vmbs/contracts";
import type { Registry } from "prom-client";
import { statusPageCss, statusPageHtml, statusPageJs } from "./status-page.js";

export interface HttpListenerDeps {
  listen: { host: string; port: number };
  fleet(filter?: FleetStatusRequest): FleetStatus;
  history(host: string, domain: string): DomainHistory;
  metrics: Registry;
}

export interface HttpListener {
  /** Where it listens (the port chosen when 0 was asked). */
  url: string;
  stop(): Promise<void>;
}

/** Read only, same origin only: the page loads nothing from elsewhere and nothing may frame it. */
const securityHeaders = {
  "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; frame-ancestors 'none'",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "Cache-Control": "no-store",
};

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { ...securityHeaders, "Content-Type": type, "Content-Length": Buffer.byteLength(body) });
  res.end(body);
}

const json = (res: ServerResponse, status: number, value: unknown): void => send(res, status, "application/json; charset=utf-8", JSON.stringify(value));

/**
 * `VMBS_HTTP_LISTEN`: the status page (`/`), its data (`/api/fleet?host=&domain=`, `/api/history?host=&domain=`)
 * and Prometheus metrics (`/metrics`). GET and HEAD only; nothing here changes anything.
 */
export async function startHttpListener(deps: HttpListenerDeps): Promise<HttpListener> {
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("Allow", "GET, HEAD");
      return send(res, 405, "text/plain; charset=utf-8", "read only: GET or HEAD\n");
    }
    const url = new URL(req.url ?? "/", "http://status.invalid");
    const query = Object.fromEntries([...url.searchParams].filter(([, v]) => v !== ""));
    switch (url.pathname) {
      case "/":
        return send(res, 200, "text/html; charset=utf-8", statusPageHtml);
      case "/app.css":
        return send(res, 200, "text/css; charset=utf-8", statusPageCss);
      case "/app.js":
        return send(res, 200, "text/javascript; charset=utf-8", statusPageJs);
      case "/favicon.ico":
        // Browsers ask for it unprompted; no icon, and no 404 in their console.
        res.writeHead(204, securityHeaders);
        return void res.end();
      case "/metrics":
        return send(res, 200, deps.metrics.contentType, await deps.metrics.metrics());
      case "/api/fleet": {
        const r = fleetStatusRequestSchema.safeParse(query);
        return r.success ? json(res, 200, deps.fleet(r.data)) : json(res, 400, { error: r.error.issues.map((i) => i.message).join("; ") });
      }
      case "/api/history": {
        const r = domainHistoryRequestSchema.safeParse(query);
        return r.success ? json(res, 200, deps.history(r.data.host, r.data.domain)) : json(res, 400, { error: r.error.issues.map((i) => i.message).join("; ") });
      }
      default:
        return send(res, 404, "text/plain; charset=utf-8", "not found\n");
    }
  };
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => send(res, 500, "text/plain; charset=utf-8", `${(err as Error).message}\n`));
  });
  // A slow client holds no socket for long.
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(deps.listen.port, deps.listen.host, () => resolve());
  });
  const { address, port } = server.address() as AddressInfo;
  return {
    url: `http://${address.includes(":") ? `[${address}]` : address}:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
