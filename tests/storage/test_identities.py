"""The identity map (storage/identities.py) on the in-memory twin: one person, one canonical id,
whatever ids (phone, BSUID, parent BSUID) their messages carry, and an id change linked; a
phone-keyed conversation keeps its key; the map's cost on a real Redis."""

from __future__ import annotations

import asyncio

import pytest

from bot.kernel.messages import (
    ConversationKey,
    InboundMessage,
    MessageKind,
    Platform,
    WhatsAppContext,
)
from storage.identities import AsyncIdentityMap, IdentityMap
from storage.keys import KeyBuilder
from tests.helpers.twins import TwinServer

KEYS = KeyBuilder()
PHONE = "6591234567"
BSUID = "SG.1502576394655843"
PARENT = "SG.ENT.7730001122"
NEW_BSUID = "SG.2209118830017744"
WA = Platform.WHATSAPP


def message(*ids: str, phone: str | None = None, n: int = 1) -> InboundMessage:
    """A WhatsApp message keyed as the adapter keys it: by the phone, else the first id."""
    first = phone or ids[0]
    key = ConversationKey(platform=WA, bot_id="1", chat_id=first, user_id=first)
    context = WhatsAppContext(to=phone, user_id=next((i for i in ids if "." in i), None),
                              message_id=f"wamid.{n}")
    return InboundMessage(key=key, event_id=f"wamid.{n}", message_id=f"wamid.{n}",
                          sender_id=first, identities=(*ids, *([phone] if phone else [])),
                          reply_context=context)


def person(resolved: InboundMessage) -> tuple[str, str, str]:
    return resolved.key.chat_id, resolved.key.user_id, resolved.sender_id


def test_the_four_variants_of_one_person_resolve_to_one_id(client):
    ids = IdentityMap(client)
    first = ids.resolve(message(BSUID, phone=PHONE))  # a new person with both: the BSUID
    assert person(first) == (BSUID, BSUID, BSUID)
    assert first.reply_context == message(BSUID, phone=PHONE).reply_context  # sent as given
    assert person(ids.resolve(message(phone=PHONE))) == (BSUID,) * 3  # phone only
    assert person(ids.resolve(message(BSUID, PARENT))) == (BSUID,) * 3  # phone hidden
    link = InboundMessage(key=ConversationKey(platform=WA, bot_id="1", chat_id=BSUID,
                                              user_id=BSUID),
                          event_id="wamid.4", message_id="wamid.4", kind=MessageKind.IDENTITY,
                          identities=(NEW_BSUID,), previous_identities=(BSUID, PARENT))
    ids.resolve(link)
    assert person(ids.resolve(message(NEW_BSUID))) == (BSUID,) * 3  # after the change
    assert ids.aliases(WA, PHONE) == {PHONE, BSUID, PARENT, NEW_BSUID}
    assert ids.canonical(WA, NEW_BSUID) == BSUID and ids.canonical(WA, "other") == "other"


def test_a_phone_keyed_conversation_keeps_its_key(client):
    """The migration: history under the phone from before BSUIDs stays the person's."""
    legacy = ConversationKey(platform=WA, bot_id="1", chat_id=PHONE, user_id=PHONE)
    client.rpush(KEYS.history(legacy), "{}")  # a turn from before BSUIDs
    ids = IdentityMap(client)
    assert person(ids.resolve(message(BSUID, phone=PHONE))) == (PHONE,) * 3
    assert person(ids.resolve(message(BSUID))) == (PHONE,) * 3


def test_two_people_who_turn_out_one_are_merged(client):
    ids = IdentityMap(client)
    assert person(ids.resolve(message(phone=PHONE)))[0] == PHONE
    assert person(ids.resolve(message(BSUID)))[0] == BSUID
    # One message names both: the first id the map knows (the BSUID) wins, with every alias.
    assert person(ids.resolve(message(BSUID, phone=PHONE)))[0] == BSUID
    assert person(ids.resolve(message(phone=PHONE)))[0] == BSUID
    assert ids.aliases(WA, PHONE) == {PHONE, BSUID}
    assert client.exists(KEYS.identity_aliases(WA, PHONE)) == 0


def test_messages_without_identities_are_untouched(client):
    plain = InboundMessage(key=ConversationKey(platform=Platform.TELEGRAM, bot_id="1",
                                               chat_id="501", user_id="501"),
                           event_id="1", message_id="1", sender_id="501")
    assert IdentityMap(client).resolve(plain) is plain
    assert client.keys("*") == []


def test_forget_deletes_every_alias(client):
    ids = IdentityMap(client)
    ids.resolve(message(BSUID, PARENT, phone=PHONE))
    ids.forget(WA, sorted(ids.aliases(WA, PHONE)))
    assert client.keys("*") == []
    assert ids.aliases(WA, PHONE) == {PHONE}


def test_the_async_map_runs_the_same_script():
    twin = TwinServer()
    IdentityMap(twin.client()).resolve(message(BSUID, phone=PHONE))

    async def scenario() -> str:
        async_client = twin.async_client()
        try:
            return (await AsyncIdentityMap(async_client).resolve(message(phone=PHONE))).key.chat_id
        finally:
            await async_client.aclose()

    assert asyncio.run(scenario()) == BSUID


@pytest.mark.integration
def test_a_known_person_costs_one_hmget(own_client):
    ids = IdentityMap(own_client)

    def cost(resolved: InboundMessage) -> dict[str, int]:
        before = own_client.info("commandstats")
        ids.resolve(resolved)
        after = own_client.info("commandstats")
        return {k.removeprefix("cmdstat_"): after[k]["calls"] - before.get(k, {"calls": 0})[
            "calls"] for k in after if k != "cmdstat_info"
            and after[k]["calls"] != before.get(k, {"calls": 0})["calls"]}

    first = cost(message(BSUID, phone=PHONE))
    assert first["hmget"] == 1 and first["exists"] == 1 and first["hset"] == 2
    assert cost(message(BSUID, phone=PHONE, n=2)) == {"evalsha": 1, "hmget": 1}
