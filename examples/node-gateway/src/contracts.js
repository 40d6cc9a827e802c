// The published JSON Schemas (schemas/json in the repository), compiled by ajv in strict mode.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import Ajv2020 from "ajv/dist/2020.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(here, "../../..");
export const SCHEMAS_DIR = process.env.SESSIONS_SCHEMAS_DIR ?? path.join(REPO, "schemas/json");
export const VECTORS_DIR = process.env.SESSIONS_VECTORS_DIR ?? path.join(REPO, "schemas/vectors");
export const SPEC = process.env.SESSIONS_ROUTING_SPEC ?? path.join(REPO, "docs/reference/routing-keys.md");

export class ContractError extends Error {
  constructor(contract, errors) {
    const where = errors.map((e) => `${e.instancePath || "/"} ${e.message}`).join("; ");
    super(`not a valid ${contract}: ${where}`);
    this.errors = errors;
  }
}

/** contract file stem (e.g. "inbound-event", "reply-event") -> a validator that throws ContractError. */
export function loadContracts(dir = SCHEMAS_DIR) {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  const validators = {};
  for (const file of fs.readdirSync(dir).filter((name) => name.endsWith(".schema.json"))) {
    const schema = JSON.parse(fs.readFileSync(path.join(dir, file), "utf8"));
    const validate = ajv.compile(schema);
    const name = file.slice(0, -".schema.json".length);
    validators[name] = (doc) => {
      if (!validate(doc)) throw new ContractError(name, validate.errors);
      return doc;
    };
  }
  return validators;
}

export function loadVectors(name, dir = VECTORS_DIR) {
  return JSON.parse(fs.readFileSync(path.join(dir, name), "utf8"));
}
