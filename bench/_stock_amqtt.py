"""Stock amqtt 0.12.1 as a standalone broker, changed only as far as the jobs flow needs.

    python bench/_stock_amqtt.py PORT

Stock amqtt refuses every client PUBLISH to a `$` topic, so no device could
use the jobs topics at all; this broker lets them through (the change our
embedded broker began with) and is otherwise amqtt as shipped: anonymous
clients, no ACL, every filter tested against every message. It is the
baseline `bench/broker_compare.py` measures against.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

from amqtt.broker import Broker
from amqtt.contexts import Action, BrokerConfig, ListenerConfig, ListenerType
from amqtt.events import BrokerEvents


class DollarBroker(Broker):  # type: ignore[misc]
    async def _handle_message_delivery(self, client_session: Any, handler: Any, wait_deliver: Any) -> bool:
        app_message = wait_deliver.result()
        topic = getattr(app_message, "topic", None)
        if not topic or not topic.startswith("$") or "#" in topic or "+" in topic:
            stock: bool = await super()._handle_message_delivery(client_session, handler, wait_deliver)
            return stock
        await self.plugins_manager.fire_event(
            BrokerEvents.MESSAGE_RECEIVED, client_id=client_session.client_id, message=app_message
        )
        if not await self._topic_filtering(client_session, topic=topic, action=Action.PUBLISH):
            return True
        await self.plugins_manager.fire_event(
            BrokerEvents.MESSAGE_BROADCAST, client_id=client_session.client_id, message=app_message
        )
        await self._broadcast_message(client_session, topic, app_message.data)
        return True


async def main(port: int) -> None:
    logging.basicConfig(level=logging.ERROR)
    for name in ("amqtt", "transitions"):
        logging.getLogger(name).setLevel(logging.ERROR)
    config = BrokerConfig(
        listeners={"default": ListenerConfig(type=ListenerType.TCP, bind=f"127.0.0.1:{port}")},
        plugins={"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    )
    broker = DollarBroker(config)
    await broker.start()
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
