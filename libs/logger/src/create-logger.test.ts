import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { createLogger } from "./create-logger.js";

describe("log lines never carry secrets", () => {
  it("hides credentials in URL fields and masks secret fields", () => {
    let out = "";
    const stream = new Writable({ write: (chunk, _e, cb) => ((out += String(chunk)), cb()) });
    const logger = createLogger({ name: "t", stream });
    logger.info({ url: "nats://vmbs:pw-1@h:4222", config: { NATS_URL: "nats://tok-2@h", NATS_PASSWORD: "pw-3", NATS_TOKEN: "tok-4" } }, "x");
    logger.info({ auth: { seed: "SUAB-5", pass: "pw-6", token: "tok-7" } }, "y");
    for (const secret of ["pw-1", "tok-2", "pw-3", "tok-4", "SUAB-5", "pw-6", "tok-7"]) assert.ok(!out.includes(secret), secret);
    assert.match(out, /"url":"nats:\/\/\*\*\*@h:4222"/);
    assert.match(out, /"NATS_URL":"nats:\/\/\*\*\*@h"/);
  });
});
