import { test, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readFile, writeFile, chmod } from "node:fs/promises";
import { join } from "node:path";
import { SMTPServer } from "smtp-server";
import { parseNotifyUrl } from "@vmbs/contracts";
import { startHttpReceiver, startTestSshd } from "@vmbs/lab";
import { createSender } from "./send-notification.js";
import { renderEvent } from "./render-event.js";

const hostileDomain = `db $(touch /tmp/PWNED) \`id\` 'q' "dq" ; rm -rf / \\ end`;
const event = { type: "failed", host: "hv1", domain: hostileDomain, runId: "r1", at: "2026-12-01T03:00:00Z", bytesWritten: 0, durationMs: 5, reason: "virtnbdbackup exited 1: disk full" };
const n = renderEvent("vmbs.evt.backup.hv1.failed", event)!;
const deps = { sshOptions: [], unraidHost: "localhost", timeoutMs: 10_000 };

const http = await startHttpReceiver();
after(() => http.close());

test("each chat service gets its documented payload over real HTTP", async () => {
  const api = encodeURIComponent(`http://${http.base}`);
  const rows: [string, (r: (typeof http.received)[number]) => void][] = [
    [`json://${http.base}/hook`, (r) => {
      assert.equal(r.url, "/hook");
      assert.deepEqual(r.body, { title: n.title, message: n.message, type: "failure", event });
    }],
    [`ntfy://${http.base}/backups`, (r) => {
      assert.equal(r.url, "/");
      assert.deepEqual(r.body, { topic: "backups", title: n.title, message: n.message, priority: 5, tags: ["failure"] });
    }],
    [`gotify://${http.base}/AppToken1`, (r) => {
      assert.equal(r.url, "/message");
      assert.equal(r.headers["x-gotify-key"], "AppToken1");
      assert.deepEqual(r.body, { title: n.title, message: n.message, priority: 10 });
    }],
    [`discord://1234/tokXYZ?api=${api}`, (r) => {
      assert.equal(r.url, "/1234/tokXYZ");
      assert.deepEqual(r.body, { username: "VM-Babysitter", content: `**${n.title}**\n${n.message}` });
    }],
    [`slack://T000/B000/XXXX?api=${api}`, (r) => {
      assert.equal(r.url, "/T000/B000/XXXX");
      assert.deepEqual(r.body, { text: `*${n.title}*\n${n.message}` });
    }],
    [`tgram://123456:ABC-def/-100200?api=${api}`, (r) => {
      assert.equal(r.url, "/bot123456:ABC-def/sendMessage");
      assert.deepEqual(r.body, { chat_id: "-100200", text: `${n.title}\n\n${n.message}` });
    }],
  ];
  for (const [url, check] of rows) {
    http.received.length = 0;
    await createSender(parseNotifyUrl(url), deps)(n, event);
    assert.equal(http.received.length, 1, url);
    assert.equal(http.received[0]!.method, "POST");
    check(http.received[0]!);
  }
});

test("an HTTP error status fails the send (the queue retries it)", async () => {
  http.status = 503;
  try {
    await assert.rejects(createSender(parseNotifyUrl(`json://${http.base}/hook`), deps)(n, event), { name: "SendError", message: /HTTP 503/ });
  } finally {
    http.status = 200;
  }
});

test("smtp:// delivers one mail with subject and reason to every recipient, logging in with the URL's user", async () => {
  const mails: { from: string; to: string[]; data: string; user?: string }[] = [];
  const server = new SMTPServer({
    disabledCommands: ["STARTTLS"],
    allowInsecureAuth: true,
    onAuth(auth, _session, cb) {
      if (auth.username === "alerts" && auth.password === "p@ss w") cb(null, { user: auth.username });
      else cb(new Error("bad login"));
    },
    onData(stream, session, cb) {
      let data = "";
      stream.on("data", (c: Buffer) => (data += c.toString("utf8")));
      stream.on("end", () => {
        mails.push({ from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "", to: session.envelope.rcptTo.map((r) => r.address), data, user: session.user as string | undefined });
        cb();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.server.address() as { port: number }).port;
  try {
    const target = parseNotifyUrl(`smtp://alerts:p%40ss%20w@127.0.0.1:${port}?from=vmbs@example.org&to=a@example.org,b@example.org`);
    // A plain name: the header is then readable without decoding RFC 2047 words.
    const plain = renderEvent("vmbs.evt.backup.hv1.failed", { ...event, domain: "web" })!;
    await createSender(target, deps)(plain, event);
    assert.equal(mails.length, 1);
    assert.equal(mails[0]!.user, "alerts");
    assert.equal(mails[0]!.from, "vmbs@example.org");
    assert.deepEqual(mails[0]!.to, ["a@example.org", "b@example.org"]);
    assert.match(mails[0]!.data, /Subject: VM-Babysitter: web on hv1: backup failed\r\n/);
    assert.match(mails[0]!.data.replace(/=\r\n/g, ""), /Reason: virtnbdbackup exited 1: disk full/);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test("unraid:// runs the notify script over real ssh with every argument intact, and nothing in the remote shell", async () => {
  const sshd = await startTestSshd();
  try {
    const script = join(sshd.dir, "notify");
    const argvFile = join(sshd.dir, "argv");
    await writeFile(script, `#!/bin/sh\nfor a in "$@"; do printf '%s\\0' "$a"; done > '${argvFile}'\n`);
    await chmod(script, 0o755);
    const target = parseNotifyUrl(`unraid://root@127.0.0.1:${sshd.port}?script=${encodeURIComponent(script)}`);
    await createSender(target, { ...deps, sshOptions: sshd.sshOptions })(n, event);
    const argv = (await readFile(argvFile, "utf8")).split("\0").slice(0, -1);
    assert.deepEqual(argv, ["-e", "VM-Babysitter", "-s", n.title, "-d", n.message, "-i", "alert"]);
    assert.ok(argv[3]!.includes(hostileDomain));
    assert.equal(existsSync("/tmp/PWNED"), false);
  } finally {
    await sshd.close();
  }
});

test("unraid:// fails with the ssh error when the host cannot be reached", async () => {
  const target = parseNotifyUrl("unraid://root@127.0.0.1:1");
  await assert.rejects(createSender(target, { ...deps, sshOptions: ["-o", "BatchMode=yes", "-o", "ConnectTimeout=5"] })(n, event), { name: "SendError", message: /ssh exited 255/ });
});
