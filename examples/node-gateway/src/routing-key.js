// The routing key of a chat event, by docs/reference/routing-keys.md (nothing here comes from the
// worker's code). Publishing with this key keeps a chat's events in order and never costs a hop.

// Unicode White_Space, the set the worker trims (String.prototype.trim differs: it also removes
// U+FEFF and keeps U+0085).
const WS = "[\\u0009-\\u000d\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";
const EDGES = new RegExp(`^${WS}+|${WS}+$`, "gu");
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/u;
const MAX_ID = 256;
// AMQP carries a routing key of at most 255 bytes; a key is ASCII once encoded (rule 6: cut).
const MAX_KEY = 255;

/** The complete alias list: every other channel is only lower-cased. */
export const CHANNEL_ALIASES = Object.freeze({ tg: "telegram", wa: "whatsapp", dc: "discord", msteams: "teams" });

export class InvalidId extends Error {}

/** An id as the worker stores it: trimmed, 1..256 characters, no control characters. */
export function cleanId(value, field) {
  if (typeof value !== "string") throw new InvalidId(`${field} must be a string`);
  const text = value.replace(EDGES, "");
  if (text.length === 0) throw new InvalidId(`${field} is empty`);
  if ([...text].length > MAX_ID) throw new InvalidId(`${field} is longer than ${MAX_ID} characters`);
  if (CONTROL.test(text)) throw new InvalidId(`${field} contains a control character`);
  if (!text.isWellFormed()) throw new InvalidId(`${field} is not well-formed Unicode`);
  return text;
}

export function normalizeChannel(channel) {
  const lowered = cleanId(channel, "channel").toLowerCase();
  return CHANNEL_ALIASES[lowered] ?? lowered;
}

/** Percent-encode UTF-8, uppercase hex, keeping A-Z a-z 0-9 - . _ ~ @ + = only. */
export function encodePart(text) {
  return encodeURIComponent(text)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%40/g, "@")
    .replace(/%2B/g, "+")
    .replace(/%3D/g, "=");
}

/** agent:<A>:<C>:group:<peerId> for a group, else agent:<A>:<C>:peer:<userId, else peerId>. */
export function routingKey(agentId, source) {
  const agent = encodePart(cleanId(agentId ?? "main", "agentId"));
  const channel = encodePart(normalizeChannel(source.channel));
  if (source.chatType === "group") {
    if (source.peerId == null) throw new InvalidId("a group source needs peerId (the group)");
    return `agent:${agent}:${channel}:group:${encodePart(cleanId(source.peerId, "peerId"))}`.slice(0, MAX_KEY);
  }
  const person = source.userId ?? source.peerId;
  if (person == null) throw new InvalidId("a direct source needs userId or peerId");
  const key = `agent:${agent}:${channel}:peer:${encodePart(cleanId(person, source.userId != null ? "userId" : "peerId"))}`;
  return key.slice(0, MAX_KEY);
}
