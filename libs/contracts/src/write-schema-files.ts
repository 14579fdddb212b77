// `npm run schemas`: writes schemas/*.schema.json at the repository root from the zod contracts, and removes
// schema files no contract makes any more.
import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { renderSchemaFiles } from "./payload-schemas.js";

/** schemas/ at the repository root, from libs/contracts/dist/. */
const schemaDir = fileURLToPath(new URL("../../../schemas/", import.meta.url));

const files = renderSchemaFiles();
await mkdir(schemaDir, { recursive: true });
for (const name of await readdir(schemaDir)) if (name.endsWith(".schema.json") && !files.has(name)) await rm(join(schemaDir, name));
for (const [name, text] of files) await writeFile(join(schemaDir, name), text);
console.log(`wrote ${files.size} schemas to ${schemaDir}`);
