import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { domainSelection } from "./domain-selection.js";
import { loadConfig } from "./load-config.js";

const selectionOf = (env: Record<string, string>) => domainSelection(loadConfig({ HOST_ID: "hv1", ...env }));

describe("domainSelection (VM_ALLOWED_LIST and VM_IGNORED_LIST)", () => {
  it("schedules every domain when neither list is set", () => {
    const s = selectionOf({});
    for (const d of ["web", "win 11", "db-1"]) assert.equal(s.whyNotScheduled(d), undefined);
  });

  it("schedules only the names and globs of VM_ALLOWED_LIST, quoted names with spaces included", () => {
    const s = selectionOf({ VM_ALLOWED_LIST: `prod-* "win 11" db-[0-9]` });
    assert.deepEqual(
      ["prod-web", "prod-", "win 11", "db-7", "db-x", "web", "win 11 copy", "xprod-web"].filter((d) => s.scheduled(d)),
      ["prod-web", "prod-", "win 11", "db-7"],
    );
    assert.equal(s.whyNotScheduled("web"), "not matched by VM_ALLOWED_LIST");
  });

  it("lets VM_IGNORED_LIST win over VM_ALLOWED_LIST, and names the variable that decides", () => {
    const s = selectionOf({ VM_ALLOWED_LIST: "prod-*", VM_IGNORED_LIST: "prod-scratch" });
    assert.equal(s.whyNotScheduled("prod-scratch"), "listed in VM_IGNORED_LIST");
    assert.equal(s.scheduled("prod-db"), true);
  });

  it("matches a name holding glob characters by its exact name too", () => {
    const s = selectionOf({ VM_ALLOWED_LIST: `"vm [old]"` });
    assert.equal(s.scheduled("vm [old]"), true);
    assert.equal(s.scheduled("vm"), false);
  });
});
