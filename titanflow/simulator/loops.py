"""The simulator's event loops: uvloop's where it is installed, asyncio's own elsewhere.

The simulator shares the machine with TitanFlow in the demo and the benchmark, so every
millisecond it spends is one TitanFlow cannot. In four interleaved pairs of unpaced benches its
CPU per message on the full path (a send answered, three webhooks posted) was 0.52-0.59 ms on
uvloop against 0.62-0.73 ms on asyncio's loop, and the end-to-end rate higher in three pairs of
four. In a py-spy profile of a full-path run, over half of what is left is uvloop's own C code
and the socket writes that carry the answers and the posts.
"""

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

try:
    import uvloop
except ImportError:  # not a dependency where it does not build (Windows)
    uvloop = None

T = TypeVar("T")


def loop_new() -> asyncio.AbstractEventLoop:
    return uvloop.new_event_loop() if uvloop else asyncio.new_event_loop()


def loop_run(coroutine: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on the simulator's loop."""
    with asyncio.Runner(loop_factory=loop_new) as runner:
        return runner.run(coroutine)
