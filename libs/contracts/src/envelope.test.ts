import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { z } from "zod";
import {
  backupCommandSchema, backupEventSchema, chainCommandSchema, chainEventSchema, drillCommandSchema, drillEventSchema,
  fleetEventSchema, mirrorCommandSchema, mirrorEventSchema, notifyDigestSchema, notifyFailedSchema,
  replicateRequestSchema, restoreEventSchema, restoreRunRequestSchema,
} from "./index.js";

type AnyObject = z.ZodObject<Record<string, z.ZodType>>;
const objectsOf = (schema: AnyObject | z.ZodDiscriminatedUnion<AnyObject[]>): AnyObject[] =>
  "options" in schema ? [...schema.options] : [schema];

describe("one envelope for every command and event", () => {
  const commands: Record<string, AnyObject> = {
    backup: backupCommandSchema, chain: chainCommandSchema, drill: drillCommandSchema, mirror: mirrorCommandSchema,
    replicate: replicateRequestSchema as unknown as AnyObject, restore: restoreRunRequestSchema as unknown as AnyObject,
  };
  for (const [name, schema] of Object.entries(commands)) {
    it(`the ${name} command takes a requestId of up to 200 characters, and no longer`, () => {
      const requestId = schema.shape.requestId;
      assert.ok(requestId, `${name} has requestId`);
      assert.equal(requestId.safeParse("r".repeat(200)).success, true);
      assert.equal(requestId.safeParse("r".repeat(201)).success, false);
      assert.equal(requestId.safeParse(undefined).success, true, "optional");
    });
  }

  const events = {
    backup: backupEventSchema, chain: chainEventSchema, drill: drillEventSchema, mirror: mirrorEventSchema,
    restore: restoreEventSchema, fleet: fleetEventSchema, "notify failed": notifyFailedSchema, "notify digest": notifyDigestSchema,
  } as unknown as Record<string, AnyObject | z.ZodDiscriminatedUnion<AnyObject[]>>;
  for (const [name, schema] of Object.entries(events)) {
    it(`every ${name} event names its host and time, and may carry the command's requestId`, () => {
      for (const object of objectsOf(schema)) {
        for (const field of ["host", "at"]) {
          assert.ok(object.shape[field], `${name}: ${field}`);
          assert.equal(object.shape[field]!.safeParse(undefined).success, false, `${name}: ${field} is required`);
        }
        assert.ok(object.shape.requestId, `${name}: requestId`);
      }
    });
  }
});
