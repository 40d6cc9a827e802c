import assert from "node:assert/strict";
import fs from "node:fs";
import { test } from "node:test";
import Ajv2020 from "ajv/dist/2020.js";
import { ContractError, SCHEMAS_DIR, loadContracts, loadVectors } from "../src/contracts.js";

const corpus = loadVectors("events.json");
const contracts = loadContracts();

const nested = (depth) => (depth <= 1 ? {} : { a: nested(depth - 1) });

function expanded({ event, expand }) {
  const copy = structuredClone(event);
  if (expand) copy[expand.field] = expand.nest ? nested(expand.nest) : expand.repeat.repeat(expand.times);
  return copy;
}

test("every exported schema compiles in ajv's strict mode", () => {
  const files = fs.readdirSync(SCHEMAS_DIR).filter((name) => name.endsWith(".schema.json"));
  assert.ok(files.length >= 17, `only ${files.length} schemas`);
  for (const file of files) {
    new Ajv2020({ strict: true }).compile(JSON.parse(fs.readFileSync(`${SCHEMAS_DIR}/${file}`, "utf8")));
  }
  for (const name of ["inbound-event", "message.inbound", "command", "reply-event", "turn-event", "query-request"]) {
    assert.equal(typeof contracts[name], "function", name);
  }
});

for (const item of corpus.valid) {
  test(`valid: ${item.why}`, () => {
    const event = expanded(item);
    contracts["inbound-event"](event);
    contracts[event.type](event);
  });
}

for (const item of corpus.invalid) {
  test(`invalid: ${item.why}`, () => {
    const event = expanded(item);
    assert.throws(() => contracts["inbound-event"](event), ContractError);
    if (contracts[event?.type]) assert.throws(() => contracts[event.type](event), ContractError);
  });
}

for (const request of corpus.queries.valid) {
  test(`valid query: ${request.query}`, () => contracts["query-request"](request));
}

for (const { why, request } of corpus.queries.invalid) {
  test(`invalid query: ${why}`, () => assert.throws(() => contracts["query-request"](request), ContractError));
}
