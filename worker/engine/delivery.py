"""DeliveryContext normalization and merging, never crossing channels."""

from __future__ import annotations

from schemas import DeliveryContext
from schemas.delivery import normalize_channel


def clean_id(value: str | None) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def normalize_delivery(context: DeliveryContext | None) -> DeliveryContext:
    if context is None:
        return DeliveryContext()
    normalized = (
        normalize_channel(context.channel),
        clean_id(context.to),
        clean_id(context.account_id),
        clean_id(context.thread_id),
        clean_id(context.reply_to_id),
    )
    if normalized == (context.channel, context.to, context.account_id, context.thread_id, context.reply_to_id):
        return context  # already normal (contexts are frozen, so sharing is safe)
    channel, to, account_id, thread_id, reply_to_id = normalized
    return DeliveryContext(channel=channel, to=to, account_id=account_id, thread_id=thread_id, reply_to_id=reply_to_id)


def merge_delivery(old: DeliveryContext | None, new: DeliveryContext | None) -> DeliveryContext:
    """Field by field, newer wins.

    When the channel changes, the old recipient, account and thread belong to the old channel
    and are dropped; when the recipient changes, the old thread and reply-to belong to the old
    chat and are dropped too.
    """
    base = normalize_delivery(old)
    fresh = normalize_delivery(new)
    if fresh.channel and base.channel and fresh.channel != base.channel:
        return fresh
    if fresh.to and base.to and fresh.to != base.to:
        base = DeliveryContext(channel=base.channel, to=base.to, account_id=base.account_id)
    merged = DeliveryContext(
        channel=fresh.channel or base.channel,
        to=fresh.to or base.to,
        account_id=fresh.account_id or base.account_id,
        thread_id=fresh.thread_id or base.thread_id,
        reply_to_id=fresh.reply_to_id or base.reply_to_id,
    )
    return fresh if merged == fresh else merged
