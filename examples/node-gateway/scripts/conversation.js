// A conversation against running workers: Telegram groups with topics, a Telegram DM, a Discord
// channel with a thread, a Slack thread, a WhatsApp chat, a Signal group and a Matrix room;
// messages answered by a tiny agent
// runtime, chat commands, command events, exact duplicates and Telegram message ids reused across
// chats. Prints a JSON report (the last line) and exits 1 when a check fails.
//
//   AMQP_URL=amqp://guest:guest@127.0.0.1:5672/ SESSIONS_PREFIX=sessions node scripts/conversation.js
import amqp from "amqplib";
import { loadContracts } from "../src/contracts.js";
import { ReplyDispatcher } from "../src/dispatcher.js";
import { Gateway } from "../src/gateway.js";
import { normalizeChannel } from "../src/routing-key.js";

const url = process.env.AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672/";
const prefix = process.env.SESSIONS_PREFIX ?? "sessions";
const timeoutMs = Number(process.env.CONVERSATION_TIMEOUT_MS ?? 60_000);

const TG_GROUP = "-1001234567890";
const TG_OTHER_GROUP = "-1009876543210";
const DC_CHANNEL = "1122334455667788990";
const SIGNAL_GROUP = "kR3x+/9Q7bO2Zs0lVnYp8eT4uW1aFgHjKlMnOpQrStU=";

// Each platform's message ids, as its gateway would take them for event ids: Telegram's
// message_id counts per chat (topics share their group's counter), so every Telegram chat sends
// "1", "2", ... and the event ids collide across chats; Discord's are snowflakes, Slack's the
// message ts, WhatsApp's wamid strings, Signal's timestamps, Matrix's event ids.
const counters = new Map();
function counter(name, start = 0) {
  const next = (counters.get(name) ?? start) + 1;
  counters.set(name, next);
  return next;
}
const ids = {
  telegram: (chat) => String(counter(chat)),
  discord: () => String(1234567890123456800n + BigInt(counter("discord"))),
  slack: () => `1712345678.${String(counter("slack")).padStart(6, "0")}`,
  whatsapp: () => `wamid.HBgLNDkxNTExMjM0NTY3OBUCABIYFDNBMDQ${counter("whatsapp")}=`,
  signal: () => String(1712345678000 + counter("signal")),
  matrix: () => `$ev${counter("matrix")}:matrix.org`,
};

// A chat as its platform addresses it; `chat` names the conversation (topics of one group share it).
const chats = [
  { name: "tg group topic 77", chat: `tg:${TG_GROUP}`, ids: ids.telegram, source: { channel: "telegram", chatType: "group", peerId: TG_GROUP, userId: "42", threadId: "77" } },
  { name: "tg group topic 78", chat: `tg:${TG_GROUP}`, ids: ids.telegram, source: { channel: "telegram", chatType: "group", peerId: TG_GROUP, userId: "43", threadId: "78" } },
  { name: "tg other group", chat: `tg:${TG_OTHER_GROUP}`, ids: ids.telegram, source: { channel: "telegram", chatType: "group", peerId: TG_OTHER_GROUP, userId: "42" } },
  { name: "tg direct", chat: "tg:42", ids: ids.telegram, source: { channel: " TG ", peerId: "42", userId: "42" } },
  { name: "discord thread", chat: `dc:${DC_CHANNEL}`, ids: ids.discord, source: { channel: "discord", chatType: "group", peerId: DC_CHANNEL, userId: "175928847299117063", threadId: "1234567890123456789" } },
  { name: "discord channel", chat: `dc:${DC_CHANNEL}`, ids: ids.discord, source: { channel: "discord", chatType: "group", peerId: DC_CHANNEL, userId: "175928847299117064" } },
  { name: "slack thread", chat: "slack:C024BE91L", ids: ids.slack, source: { channel: "slack", chatType: "group", peerId: "C024BE91L", userId: "U024BE7LH", threadId: "1712345678.123456", accountId: "T024BE7LD" } },
  { name: "whatsapp direct", chat: "wa:+4915112345678", ids: ids.whatsapp, source: { channel: "whatsapp", peerId: "4915112345678@s.whatsapp.net", userId: "+4915112345678" } },
  { name: "signal group", chat: `signal:${SIGNAL_GROUP}`, ids: ids.signal, source: { channel: "signal", chatType: "group", peerId: SIGNAL_GROUP, userId: "+4915112345678" } },
  { name: "matrix room", chat: "matrix:room", ids: ids.matrix, source: { channel: "matrix", chatType: "group", peerId: "!OGEhHVWSdvArJzumhm:matrix.org", userId: "@alice:matrix.org" } },
];

/** Where a reply to `messageId` in `chat` must go: the route the dispatcher delivers to. */
function routeOf(chat, messageId) {
  const { source } = chat;
  return [normalizeChannel(source.channel), source.peerId.trim(), source.threadId ?? "", messageId].join("|");
}

function routeOfReply(reply) {
  const d = reply.delivery;
  return [d.channel, d.to, d.threadId ?? "", d.replyToId ?? ""].join("|");
}

const secretOf = (chat) => `secret-of-${chat.chat}`;

async function main() {
  const contracts = loadContracts();
  const connection = await amqp.connect(url);
  const publishChannel = await connection.createConfirmChannel();
  const consumeChannel = await connection.createChannel();
  const gateway = new Gateway(publishChannel, contracts, { prefix });
  const problems = [];
  const expected = new Map(); // route -> {kind, eventId, chat, isHistory}
  const delivered = new Map(); // route -> [reply]
  const wrongChannel = [];

  const dispatchers = {};
  for (const platform of ["telegram", "discord", "slack", "whatsapp", "signal", "matrix"]) {
    dispatchers[platform] = await new ReplyDispatcher(
      consumeChannel,
      contracts,
      platform,
      (reply, key) => {
        if (reply.delivery.channel !== platform || !key.startsWith(`${platform}.`)) wrongChannel.push({ platform, key, reply });
        const route = routeOfReply(reply);
        delivered.set(route, [...(delivered.get(route) ?? []), reply]);
      },
      { prefix },
    ).start();
  }

  // The agent runtime: answers each turn once (a duplicate message re-publishes its turn).
  const answeredTurns = new Set();
  const turns = await consumeChannel.assertQueue("", { exclusive: true, autoDelete: true });
  await consumeChannel.bindQueue(turns.queue, `${prefix}.turns`, "#");
  await consumeChannel.consume(turns.queue, async (message) => {
    const turn = JSON.parse(message.content.toString("utf8"));
    if (!answeredTurns.has(turn.eventId)) {
      answeredTurns.add(turn.eventId);
      await gateway.answerTurn(turn, `you said: ${turn.text}`);
    }
    consumeChannel.ack(message);
  });

  let published = 0;
  let duplicates = 0;
  async function send(chat, text, { kind, asCommandEvent = false, isHistory = false } = {}) {
    const messageId = chat.ids(chat.chat);
    const source = { ...chat.source, messageId };
    const eventId = messageId;
    const sent = asCommandEvent
      ? await gateway.command(source, text, { eventId })
      : await gateway.message(source, text, { eventId });
    published += 1;
    expected.set(routeOf(chat, messageId), { kind, eventId, chat, isHistory });
    return sent;
  }

  // Not fatal: the conversation goes on, and the checks below say what is missing.
  async function waitFor(predicate, what, deadline = Date.now() + timeoutMs) {
    while (!predicate()) {
      if (Date.now() > deadline) return problems.push(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  async function converse(chat) {
    const hello = await send(chat, `hello from ${chat.name}, ${secretOf(chat)}`, { kind: "assistant" });
    await waitFor(() => delivered.has(routeOf(chat, hello.event.source.messageId)), `the answer in ${chat.name}`);
    await gateway.resend(hello.body, hello.key); // a gateway's retry of the message: one entry, one answer
    duplicates += 1;
    await send(chat, "/session", { kind: "command-result" });
    const history = await send(chat, "/history", { kind: "command-result", isHistory: true });
    await send(chat, "/checkpoint list", { kind: "command-result", asCommandEvent: true });
    await gateway.resend(history.body, history.key); // an exact duplicate of a read-only command
    duplicates += 1;
  }

  const started = Date.now();
  // Every chat at once: the reused Telegram ids ("1", "2", ...) are in flight together.
  await Promise.all(chats.map((chat) => converse(chat)));
  await waitFor(() => [...expected.keys()].every((route) => delivered.has(route)), "every reply", started + timeoutMs);
  await new Promise((resolve) => setTimeout(resolve, 1500)); // late extras (a doubled reply) show up here

  for (const [route, want] of expected) {
    const replies = delivered.get(route) ?? [];
    if (replies.length !== 1) problems.push(`${route}: ${replies.length} distinct replies, expected 1`);
    for (const reply of replies) {
      if (reply.kind !== want.kind) problems.push(`${route}: kind ${reply.kind}, expected ${want.kind}`);
      if (reply.inReplyTo !== want.eventId) {
        problems.push(`${route}: inReplyTo ${reply.inReplyTo}, expected ${want.eventId}`);
      }
      if (want.isHistory) {
        if (!reply.text.includes(secretOf(want.chat))) problems.push(`${route}: /history misses its own chat`);
        for (const other of chats) {
          if (other.chat !== want.chat.chat && reply.text.includes(secretOf(other))) {
            problems.push(`${route}: /history shows ${other.chat}`);
          }
        }
      }
    }
  }
  for (const route of delivered.keys()) {
    if (!expected.has(route)) problems.push(`${route}: a reply nobody asked for here`);
  }
  for (const { platform, key } of wrongChannel) problems.push(`${platform} dispatcher got ${key}`);
  let copies = 0;
  const replyIds = new Set();
  for (const dispatcher of Object.values(dispatchers)) {
    problems.push(...dispatcher.rejected.map((error) => `${dispatcher.platform}: invalid reply: ${error}`));
    for (const [eventId, bodies] of dispatcher.copies) {
      copies += bodies.length;
      if (replyIds.has(eventId)) problems.push(`reply id ${eventId} used in two channels`);
      replyIds.add(eventId);
      if (bodies.some((body) => body !== bodies[0])) problems.push(`reply ${eventId}: its copies differ`);
    }
  }
  const distinct = [...delivered.values()].reduce((sum, replies) => sum + replies.length, 0);
  if (replyIds.size !== distinct) problems.push(`${replyIds.size} reply ids for ${distinct} replies`);
  if (answeredTurns.size !== chats.length) problems.push(`${answeredTurns.size} turns for ${chats.length} messages`);

  const report = {
    ok: problems.length === 0,
    problems,
    stats: {
      chats: chats.length,
      published,
      duplicatesPublished: duplicates,
      expectedReplies: expected.size,
      distinctReplies: distinct,
      replyCopies: copies,
      turns: answeredTurns.size,
    },
  };
  await connection.close();
  console.log(JSON.stringify(report));
  return report.ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.log(JSON.stringify({ ok: false, problems: [String(error.stack ?? error)] }));
    process.exit(1);
  },
);
