// A reply dispatcher for one channel: its own queue bound to "<channel>.#" on the replies exchange.
export class ReplyDispatcher {
  /**
   * deliver(reply) sends the text to reply.delivery (chat `to`, `threadId`, replying to `replyToId`).
   * Replies re-published for a duplicate carry the same eventId: each is delivered once.
   */
  constructor(channel, contracts, platform, deliver, { prefix = "sessions" } = {}) {
    this.channel = channel;
    this.contracts = contracts;
    this.platform = platform;
    this.deliver = deliver;
    this.exchange = `${prefix}.replies`;
    this.copies = new Map(); // reply eventId -> every body received with it (a duplicate's are identical)
    this.rejected = [];
  }

  async start() {
    const { queue } = await this.channel.assertQueue("", { exclusive: true, autoDelete: true });
    await this.channel.bindQueue(queue, this.exchange, `${this.platform}.#`);
    await this.channel.consume(queue, (message) => this.onMessage(message));
    return this;
  }

  async onMessage(message) {
    let reply;
    try {
      reply = this.contracts["reply-event"](JSON.parse(message.content.toString("utf8")));
    } catch (error) {
      this.rejected.push(String(error.message ?? error));
      this.channel.nack(message, false, false); // not ours to retry: a broken reply stays broken
      return;
    }
    const bodies = this.copies.get(reply.eventId);
    if (bodies === undefined) {
      this.copies.set(reply.eventId, [message.content.toString("utf8")]);
      await this.deliver(reply, message.fields.routingKey);
    } else {
      bodies.push(message.content.toString("utf8"));
    }
    this.channel.ack(message);
  }
}
