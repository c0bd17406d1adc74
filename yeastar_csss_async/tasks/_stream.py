"""The jobs' Redis stream, as a worker needs it: a job is read only when the worker has room
for it, a running job's claim is kept alive, a job cut off by a shutdown is handed back at
once, and a job whose worker stopped beating is taken over, also while the queue is idle.

Built on taskiq-redis' :class:`~taskiq_redis.RedisStreamBroker` (its stream, consumer group,
``kick`` and acknowledgement). What it adds is the claim: a delivered job stays pending in the
consumer group until it is acknowledged; its owner resets its idle time every
``claim_timeout / 4`` seconds (``XCLAIM`` of its own entry, only while it is still its own),
and any worker takes over an entry idle for more than ``claim_timeout`` (``XAUTOCLAIM``),
before each read, so a dead worker's job runs again within about ``claim_timeout`` whether or
not new jobs arrive. (taskiq-redis 1.2 reclaims only after a read that returned new jobs.)
"""

from __future__ import annotations

import logging
from typing import Any

from redis.asyncio import Redis
from taskiq import AckableMessage
from taskiq_redis import RedisStreamBroker

__all__ = ["JobStream", "StreamJob"]

logger = logging.getLogger("yeastar_csss_async.tasks")

_KEEP = """
local entry = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if entry[1] == nil or entry[1][2] ~= ARGV[2] then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'IDLE', ARGV[4], 'JUSTID')
return 1
"""
"""Set the idle time of entry ARGV[3] to ARGV[4] ms, only if consumer ARGV[2] owns it: 0 to
keep a claim alive, a large value to hand the entry back for any worker to take at once."""

_LEAVE = """
for _, consumer in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local info = {}
  for i = 1, #consumer, 2 do info[consumer[i]] = consumer[i + 1] end
  if info['name'] == ARGV[2] then
    if info['pending'] == 0 then
      redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
      return 1
    end
    return 0
  end
end
return 0
"""
"""Remove consumer ARGV[2] from the group if it holds no pending entry (its entries would be
lost with it otherwise)."""


class StreamJob(AckableMessage):
    """A delivered job: its message, its stream entry id, and how to acknowledge it."""

    entry_id: str


class JobStream(RedisStreamBroker):
    """A :class:`~taskiq_redis.RedisStreamBroker` whose deliveries are claims (see the module).

    ``claim_timeout``: seconds without a heartbeat after which another worker takes a job
    over. ``read_block``: seconds one read waits for a new job (a worker stopping finishes
    its current read first, so this bounds how long it takes to stop taking jobs).
    """

    def __init__(
        self,
        url: str,
        *,
        claim_timeout: float,
        read_block: float = 1.0,
        **kwargs: Any,
    ) -> None:
        if not claim_timeout > 0:
            raise ValueError("claim_timeout must be > 0 seconds")
        super().__init__(
            url,
            idle_timeout=max(1, round(claim_timeout * 1000)),
            xread_block=max(1, round(read_block * 1000)),
            xread_count=1,
            **kwargs,
        )
        self.claim_timeout = claim_timeout

    @property
    def heartbeat_interval(self) -> float:
        """Seconds between two resets of a running job's idle time."""
        return self.claim_timeout / 4

    def _redis(self) -> Redis:
        return Redis(connection_pool=self.connection_pool)

    async def next_job(self) -> StreamJob | None:
        """One job for this worker: first one whose claim ran out (its worker died), else a
        new one, waiting up to ``read_block`` for it; None when there is none."""
        async with self._redis() as redis:
            reclaimed = await redis.xautoclaim(
                self.queue_name,
                self.consumer_group_name,
                self.consumer_name,
                min_idle_time=self.idle_timeout,
                start_id="0-0",
                count=1,
            )
            for entry_id, fields in reclaimed[1]:
                if fields:  # an entry trimmed from the stream has none
                    logger.info("taking over job entry %s: its worker stopped", _text(entry_id))
                    return self._job(entry_id, fields)
            fetched = await redis.xreadgroup(
                self.consumer_group_name,
                self.consumer_name,
                {self.queue_name: ">"},
                block=self.block,
                count=1,
                noack=False,
            )
        streams: list[Any] = list(fetched or ())
        for _stream, entries in streams:
            for entry_id, fields in entries:
                return self._job(entry_id, fields)
        return None

    async def listen(self) -> Any:  # an AsyncGenerator[StreamJob, None]
        """taskiq's interface: every job, as :meth:`next_job` takes them."""
        while True:
            job = await self.next_job()
            if job is not None:
                yield job

    def _job(self, entry_id: bytes | str, fields: dict[bytes, bytes]) -> StreamJob:
        entry = _text(entry_id)
        return StreamJob(
            data=fields[b"data"],
            ack=self._ack_generator(id=entry, queue_name=self.queue_name),
            entry_id=entry,
        )

    async def keep_claim(self, job: StreamJob) -> bool:
        """Reset the job's idle time, if it is still this worker's; False when it is not
        (acknowledged, or taken over after a heartbeat was missed)."""
        return await self._set_idle(job, 0)

    async def hand_back(self, job: StreamJob) -> bool:
        """Make the job (not acknowledged) look as idle as a dead worker's, so the next read
        of any worker takes it over at once."""
        return await self._set_idle(job, self.idle_timeout * 10)

    async def _set_idle(self, job: StreamJob, idle_ms: int) -> bool:
        async with self._redis() as redis:
            done = await redis.eval(
                _KEEP,
                1,
                self.queue_name,
                self.consumer_group_name,
                self.consumer_name,
                job.entry_id,
                idle_ms,
            )
        return bool(done)

    async def leave(self) -> None:
        """Remove this worker from the consumer group if it holds no job (a clean exit)."""
        async with self._redis() as redis:
            await redis.eval(
                _LEAVE, 1, self.queue_name, self.consumer_group_name, self.consumer_name
            )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
