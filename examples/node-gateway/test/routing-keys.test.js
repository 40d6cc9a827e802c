import assert from "node:assert/strict";
import { test } from "node:test";
import { loadVectors } from "../src/contracts.js";
import { InvalidId, routingKey } from "../src/routing-key.js";

const vectors = loadVectors("routing-keys.json");

test("the vectors cover every platform", () => {
  const platforms = new Set(vectors.vectors.map((v) => v.platform));
  for (const name of ["telegram", "discord", "slack", "whatsapp", "signal", "matrix", "email", "unicode"]) {
    assert.ok(platforms.has(name), name);
  }
});

for (const vector of vectors.vectors) {
  test(`key: ${vector.name}`, () => {
    assert.equal(routingKey(vector.agentId, vector.source), vector.key);
  });
}

for (const { name, source } of vectors.invalid.cases) {
  test(`no key: ${name}`, () => {
    assert.throws(() => routingKey(undefined, source), InvalidId);
  });
}
