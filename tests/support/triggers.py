"""Running a trigger outside the triggerer: its first event, on an event loop of the test's own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any, cast

from airflow.triggers.base import BaseTrigger, TriggerEvent


def first_event(trigger: BaseTrigger, timeout: float | None = None) -> dict[str, Any]:
    """The payload of the first event ``trigger.run()`` yields; the generator is closed after it.

    ``timeout``: seconds to wait for it (``None``: no limit). A trigger that ends without an event fails
    the test.
    """

    async def first() -> dict[str, Any]:
        generator = cast(AsyncGenerator[TriggerEvent, None], trigger.run())
        try:
            event = await asyncio.wait_for(anext(generator), timeout)
        except StopAsyncIteration:
            raise AssertionError("the trigger ended without an event") from None
        finally:
            await generator.aclose()
        return dict(event.payload)

    return asyncio.run(first())
