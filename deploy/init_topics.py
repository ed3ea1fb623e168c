"""One-shot: create every topic (and its dead-letter topic) with partitions, then exit.

Services never auto-create topics: partition counts are a deployment decision
(``HITL_PARTITIONS``), and the number of partitions bounds how far ``--scale`` helps.
"""

from __future__ import annotations

import asyncio
import logging

from hitl_shared.kafka import ensure_topics
from hitl_shared.runtime import configure_logging, wait_for_dependencies
from hitl_shared.settings import Settings


async def main() -> None:
    settings = Settings(service_name="topic-init")
    configure_logging(settings)
    await wait_for_dependencies(settings, redis=False)
    await ensure_topics(settings)
    logging.getLogger("hitl.topic-init").info(
        "topics ready: %d topics x %d partitions",
        len(settings.topics.all()),
        settings.partitions,
    )


if __name__ == "__main__":
    asyncio.run(main())
