"""`PresenceBook`: who is connected, the events it produces, and what it remembers."""

import json

from iot_jobs_bridge.broker.presence import DisconnectReason, PresenceBook, presence_topic


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def connect(book, client_id, **fields):
    values = {
        "principal_identifier": client_id,
        "ip_address": "10.0.0.1",
        "port": 5000,
        "keepalive": 60,
        "clean_session": True,
        **fields,
    }
    return book.connected(client_id, **values)


def test_versions_grow_per_connection_and_are_shared_by_its_two_events():
    clock = Clock()
    book = PresenceBook(clock)
    first, (_, payload) = connect(book, "t1")
    assert json.loads(payload)["versionNumber"] == first.version_number
    (_, gone) = book.disconnected(first, DisconnectReason.CONNECTION_LOST)
    assert json.loads(gone)["versionNumber"] == first.version_number
    second, _ = connect(book, "t1")
    assert second.version_number > first.version_number
    # A broker started later (a restart) keeps counting up.
    clock.now += 1
    later, _ = connect(PresenceBook(clock), "t1")
    assert later.version_number > second.version_number


def test_the_state_follows_the_latest_connection_only():
    clock = Clock()
    book = PresenceBook(clock)
    old, _ = connect(book, "t1")
    new, _ = connect(book, "t1")  # a take-over whose old end comes late
    clock.now += 5
    assert book.disconnected(old, DisconnectReason.DUPLICATE_CLIENTID) is not None  # still announced
    assert book.get("t1") is new and book.get("t1").connected
    book.disconnected(new, DisconnectReason.MQTT_KEEP_ALIVE_TIMEOUT)
    state = book.get("t1")
    assert (state.connected, state.disconnect_reason, state.timestamp) == (
        False,
        DisconnectReason.MQTT_KEEP_ALIVE_TIMEOUT,
        clock.now,
    )


def test_a_persistent_session_keeps_its_session_identifier():
    book = PresenceBook(Clock())
    first, _ = connect(book, "t1", clean_session=False)
    again, _ = connect(book, "t1", clean_session=False, session_identifier=first.session_identifier)
    assert again.session_identifier == first.session_identifier
    assert connect(book, "t2")[0].session_identifier != first.session_identifier


def test_client_ids_that_cannot_be_a_topic_level_get_no_events_but_are_known():
    book = PresenceBook(Clock())
    for client_id in ("a+b", "a#", "nul\x00"):
        state, event = connect(book, client_id)
        assert event is None
        assert book.disconnected(state, DisconnectReason.CONNECTION_LOST) is None
        assert book.get(client_id) is not None


def test_only_so_many_disconnected_clients_are_remembered():
    book = PresenceBook(Clock(), remembered=2)
    live, _ = connect(book, "live")
    for name in ("a", "b", "c"):
        book.disconnected(connect(book, name)[0], DisconnectReason.CONNECTION_LOST)
    assert [book.get(name) is not None for name in ("a", "b", "c")] == [False, True, True]
    assert book.get("live") is live  # connected clients are never forgotten


def test_topics():
    assert presence_topic("connected", "t1") == "$aws/events/presence/connected/t1"
    assert presence_topic("disconnected", "t1") == "$aws/events/presence/disconnected/t1"


def test_connected_devices_are_counted_and_other_clients_are_not():
    book = PresenceBook(Clock())
    first, _ = connect(book, "t1")
    connect(book, "monitor", device=False)  # the admin key's client
    assert book.devices_connected == 1
    taken_over, _ = connect(book, "t1")  # the same device again: still one
    assert book.devices_connected == 1
    book.disconnected(first, DisconnectReason.DUPLICATE_CLIENTID)  # the old connection's late end
    assert book.devices_connected == 1
    book.disconnected(taken_over, DisconnectReason.CONNECTION_LOST)
    assert book.devices_connected == 0
