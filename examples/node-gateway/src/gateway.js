// A chat gateway: turns platform messages into sessions events, validated and keyed by the spec.
import { randomUUID } from "node:crypto";
import { routingKey } from "./routing-key.js";

export class Gateway {
  /** channel: an amqplib confirm channel; prefix: the deployment's topology prefix ("sessions"). */
  constructor(channel, contracts, { prefix = "sessions", agentId = "main" } = {}) {
    this.channel = channel;
    this.contracts = contracts;
    this.exchange = `${prefix}.inbound`;
    this.agentId = agentId;
  }

  /** A user's message (text starting with "/" is a chat command). */
  message(source, text, { eventId = randomUUID(), senderName } = {}) {
    const event = { version: 1, type: "message.inbound", eventId, agentId: this.agentId, source, text };
    if (senderName !== undefined) event.senderName = senderName;
    return this.publish(event, source);
  }

  /** A command on behalf of source's user, e.g. from an admin console. */
  command(source, command, { eventId = randomUUID() } = {}) {
    return this.publish({ version: 1, type: "command", eventId, agentId: this.agentId, source, command }, source);
  }

  /** An agent runtime's answer to a turn event: routed with the turn's orderingKey. */
  answerTurn(turn, content, { eventId = randomUUID() } = {}) {
    this.contracts["turn-event"](turn);
    const event = {
      version: 1,
      type: "message.agent",
      eventId,
      agentId: turn.agentId,
      sessionId: turn.sessionId,
      role: "assistant",
      content,
      inReplyTo: turn.inReplyTo,
      inReplyToSeq: turn.seq, // exact even when chats sharing a session reuse event ids
    };
    return this.send(event, turn.orderingKey);
  }

  async publish(event, source) {
    return this.send(event, routingKey(event.agentId, source));
  }

  /** Validate, publish persistently and wait for the broker's confirm. Returns the exact body sent. */
  async send(event, key) {
    this.contracts["inbound-event"](event);
    const body = Buffer.from(JSON.stringify({ ...event, occurredAt: event.occurredAt ?? new Date().toISOString() }));
    await this.resend(body, key, event);
    return { event, body, key };
  }

  /** Publish these exact bytes again (a gateway's retry). */
  async resend(body, key, event = JSON.parse(body)) {
    this.channel.publish(this.exchange, key, body, {
      persistent: true,
      contentType: "application/json",
      messageId: event.eventId,
      type: event.type,
    });
    await this.channel.waitForConfirms();
  }
}
