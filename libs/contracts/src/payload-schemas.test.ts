import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { payloadContracts, renderSchemaFiles, restoreEndpointMetadata, statusEndpointMetadata } from "./payload-schemas.js";
import { commandVerbs, restoreEndpoints, statusEndpoints } from "./subjects.js";

const repo = new URL("../../../", import.meta.url);
const schemaDir = new URL("schemas/", repo);

describe("published payload schemas", () => {
  it("the checked-in schemas/ are what the zod contracts make now (else: npm run schemas)", async () => {
    const expected = renderSchemaFiles();
    const present = (await readdir(schemaDir)).filter((f) => f.endsWith(".schema.json")).sort();
    assert.deepEqual(present, [...expected.keys()].sort(), "schemas/ holds exactly the generated files; run npm run schemas");
    for (const [file, text] of expected) assert.equal(await readFile(new URL(file, schemaDir), "utf8"), text, `schemas/${file} is stale; run npm run schemas`);
  });

  it("covers every command verb, event service and endpoint, each subject and kind once", () => {
    const subjectsCovered = payloadContracts.map((c) => c.subject);
    for (const verb of [...commandVerbs, "mirror", "drill"]) assert.ok(subjectsCovered.includes(`vmbs.cmd.${verb}.<host>`), verb);
    for (const service of ["backup", "chain", "mirror", "restore", "drill"]) assert.ok(subjectsCovered.includes(`vmbs.evt.${service}.<host>.*`), service);
    for (const e of restoreEndpoints) assert.deepEqual(Object.keys(restoreEndpointMetadata(e)), ["request_schema", "response_schema"]);
    for (const e of statusEndpoints) assert.equal(statusEndpointMetadata(e).response_schema, `svc.status.${e}.reply.schema.json`);
    assert.equal(new Set(payloadContracts.map((c) => c.file)).size, payloadContracts.length, "one file per subject and kind");
  });

  it("the schema says what the contract says: a strict command refuses unknown fields, defaults are optional", () => {
    const backup = JSON.parse(renderSchemaFiles().get("cmd.backup.schema.json")!) as Record<string, unknown>;
    assert.equal(backup.$id, "cmd.backup.schema.json");
    assert.equal(backup.title, "vmbs.cmd.backup.<host>");
    assert.equal(backup.additionalProperties, false);
    assert.equal(backup.required, undefined, "every field of a backup command is optional");
    const history = JSON.parse(renderSchemaFiles().get("svc.status.history.request.schema.json")!) as { required: string[] };
    assert.deepEqual(history.required, ["host", "domain"]);
  });

  it("the README's NATS contract links every schema file, and links only files that exist", async () => {
    const readme = await readFile(new URL("README.md", repo), "utf8");
    const linked = new Set([...readme.matchAll(/\]\(schemas\/([^)]+\.schema\.json)\)/g)].map((m) => m[1]!));
    assert.deepEqual([...linked].sort(), [...renderSchemaFiles().keys()].sort());
  });
});
