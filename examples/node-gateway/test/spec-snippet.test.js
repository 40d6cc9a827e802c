// The specification's JavaScript lines are a complete implementation: they compute every vector.
import assert from "node:assert/strict";
import fs from "node:fs";
import { test } from "node:test";
import { SPEC, loadVectors } from "../src/contracts.js";

test("the specification's JavaScript snippet computes every vector", () => {
  const snippet = fs.readFileSync(SPEC, "utf8").split("```js\n")[1].split("```")[0];
  const routingKey = new Function(`${snippet}\nreturn routingKey;`)();
  for (const vector of loadVectors("routing-keys.json").vectors) {
    assert.equal(routingKey(vector.agentId, vector.source), vector.key, vector.name);
  }
});
