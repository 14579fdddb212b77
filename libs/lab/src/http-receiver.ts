import { createServer, type IncomingHttpHeaders, type Server } from "node:http";

export interface ReceivedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: unknown;
}

/** A real HTTP receiver on 127.0.0.1 recording each JSON POST; `status` is what it answers (e.g. 503 = down). */
export interface HttpReceiver {
  base: string;
  port: number;
  received: ReceivedRequest[];
  status: number;
  /** Stops listening (connections are refused) until `listen()`. */
  close(): Promise<void>;
  listen(): Promise<void>;
}

export async function startHttpReceiver(port = 0): Promise<HttpReceiver> {
  let server: Server | undefined;
  const r: HttpReceiver = {
    base: "",
    port,
    received: [],
    status: 200,
    async close() {
      const s = server;
      server = undefined;
      if (!s) return;
      s.closeAllConnections();
      await new Promise((resolve) => s.close(resolve));
    },
    async listen() {
      server = createServer((req, res) => {
        let text = "";
        req.on("data", (c: Buffer) => (text += c.toString("utf8")));
        req.on("end", () => {
          if (r.status < 300) r.received.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body: text ? JSON.parse(text) : undefined });
          res.writeHead(r.status, { "content-type": "application/json" }).end("{}");
        });
      });
      await new Promise<void>((resolve) => server!.listen(r.port, "127.0.0.1", resolve));
      r.port = (server.address() as { port: number }).port;
      r.base = `127.0.0.1:${r.port}`;
    },
  };
  await r.listen();
  return r;
}
