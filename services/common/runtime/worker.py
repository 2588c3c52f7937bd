"""Builds one service's faust worker: consume, decide, store, relay, expose health and metrics.

Entrypoints stay thin: this wires adapters around the service's pure decider.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Callable

import faust
import mode
from aiokafka import AIOKafkaProducer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from schemas.registry import DECISION_TOPICS, REPARTITION_TOPICS
from schemas.errors import ERROR_CODES

from ..audit.signing import load_private
from ..config import Settings
from ..db import connection, create_pool
from ..eventstore.migrate import migrate
from ..logs import log_format, logging_config
from ..policy import LoadedPolicy
from ..topic_reader import consumer_group
from .checkpointer import Checkpointer
from .dead_letter_relay import DeadLetterRelay
from .dead_letters import DeadLetters, InputMessage
from .fetch_wait import set_fetch_waits
from .gc_tuning import tune_collector
from .key_partitioner import partition_for
from .loop_lag import watch_loop_lag
from .integrity import PeriodicVerifier
from .metrics import (
    CHECKPOINTS_ENABLED, CONCURRENCY_CONFLICTS, CONSUMER_LAG, DEAD_LETTER_SEND_FAILURES, DEAD_LETTERS, STORE_BLOCKED,
    STORE_RETRIES, UP,
)
from .poison_hold import STREAM_BLOCKED
from .relay import Relay
from .timers import TimerPublisher, timer_topic
from . import batch_consumer
from .batch_pipeline import BatchPipeline
from .batch_processor import BatchProcessor

log = logging.getLogger(__name__)

try:
    SERVICE_VERSION = version("wuguan")
except PackageNotFoundError:  # running from a source tree
    SERVICE_VERSION = "0.0.0+source"


PRODUCER_BATCH_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ServiceDefinition:
    decider: object
    load_policy: Callable[[Settings], LoadedPolicy]


def faust_settings(settings: Settings, service: str) -> dict:
    hosts = [host.strip() for host in settings.kafka_bootstrap_servers.split(",")]
    conf = dict(
        broker=[f"kafka://{host}" for host in hosts],
        # faust's consumer with one change: each fetch is delivered as a batch (batch_consumer.py)
        broker_consumer=[f"{batch_consumer.SCHEME}://{host}" for host in hosts],
        value_serializer="raw",
        key_serializer="raw",
        topic_partitions=settings.partitions,
        topic_disable_leader=True,
        store="memory://",
        web_enabled=True,
        web_host=settings.web_host,
        web_bind=settings.web_host,  # faust binds 0.0.0.0 unless told; metrics stay on WUGUAN_WEB_HOST
        # Settings from the composition root's registry hold every service's port: a worker
        # without one must not serve its metrics on a port nobody scrapes.
        web_port=settings.web_ports[service],
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        broker_max_poll_records=settings.batch_size,
        stream_buffer_maxsize=max(4096, settings.batch_size * 4),
    )
    if settings.fast_group_join:
        # The embedded broker lets a group settle in seconds instead of ~30 s.
        conf.update(broker_rebalance_timeout=5, broker_session_timeout=6, broker_heartbeat_interval=1)
    return conf


class Runtime:
    """The adapters one worker needs; started and stopped with the faust app."""

    def __init__(self, app: faust.App, definition: ServiceDefinition, settings: Settings):
        self.app = app
        self.definition = definition
        self.settings = settings
        self.service = definition.decider.service
        self.ready = asyncio.Event()
        self.tasks: list[asyncio.Task] = []
        self.pool = None
        self.checkpoint_pool = None
        self.producer = None
        self.processor: BatchProcessor | None = None
        self.pipeline: BatchPipeline | None = None

    async def start(self) -> None:
        policy = self.definition.load_policy(self.settings)
        async with connection(self.settings.database_url) as conn:
            applied = await migrate(conn)
        if applied:
            log.info("applied migrations: %s", ", ".join(applied))
        role = self.settings.db_role or None
        # Deciding, storing, timers, verify and health leave no session state behind (db.create_pool).
        self.pool = await create_pool(self.settings.database_url, role=role, max_size=self.settings.db_pool_size,
                                      session_state=False)
        if self.settings.checkpoint_key is not None:  # the checkpointer holds a session's advisory lock
            self.checkpoint_pool = await create_pool(self.settings.database_url, role=role, max_size=2)
        self.producer = self._producer()
        await self.producer.start()
        dead_letter_relay = DeadLetterRelay(
            service=self.service, pool=self.pool, producer=self.producer,
            interval_s=self.settings.relay_interval_ms / 1000, max_bytes=self.settings.dead_letter_max_bytes,
        )
        self.processor = BatchProcessor(
            decider=self.definition.decider,
            policy=policy,
            pool=self.pool,
            dead_letters=DeadLetters(self.service, wake=dead_letter_relay.wake),
            service_version=SERVICE_VERSION,
            max_event_bytes=self.settings.max_event_bytes,
        )
        self.pipeline = BatchPipeline(self.processor)
        relay = Relay(
            service=self.service,
            topic=DECISION_TOPICS[self.service],
            database_url=self.settings.database_url,
            role=role,
            producer=self.producer,
            interval_s=self.settings.relay_interval_ms / 1000,
            log_decisions=log_format() == "json",
            route=REPARTITION_TOPICS.get(self.service),
        )
        timers = TimerPublisher(
            service=self.service, pool=self.pool, producer=self.producer,
            interval_s=self.settings.timer_interval_ms / 1000, clock=self.settings.timer_clock,
        )
        verifier = PeriodicVerifier(service=self.service, pool=self.pool, interval_s=self.settings.verify_interval_s,
                                    claims_made=getattr(self.definition.decider, "claims_made", None))
        self._zero_counters()
        self.tasks = self._checkpoint_tasks()
        self.tasks += [
            asyncio.create_task(relay.run(), name=f"{self.service}-relay"),
            asyncio.create_task(dead_letter_relay.run(), name=f"{self.service}-dead-letters"),
            asyncio.create_task(verifier.run(), name=f"{self.service}-verify"),
            asyncio.create_task(timers.run(), name=f"{self.service}-timers"),
            asyncio.create_task(self._watch_lag(), name=f"{self.service}-lag"),
            asyncio.create_task(watch_loop_lag(self.service), name=f"{self.service}-loop-lag"),
        ]
        self.ready.set()
        log.info("%s %s ready (policy %s)", self.service, SERVICE_VERSION, policy.version)

    def _producer(self) -> AIOKafkaProducer:
        max_request = self.settings.dead_letter_max_bytes + 64 * 1024  # the largest dead letter and its framing
        return AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            acks="all",
            enable_idempotence=False,  # the embedded broker has no idempotent producer
            linger_ms=5,
            max_request_size=max_request,
            # aiokafka sends one batch per partition at a time and makes send() wait while that
            # partition's batch is full: at its default of 16 KiB (~10 decisions) the relay waited
            # for the broker every ten decisions, each wait as long as the batch being decided
            # meanwhile, and fell seconds behind a busy worker (docs/performance.md, run 16).
            max_batch_size=min(PRODUCER_BATCH_BYTES, max_request),
            partitioner=partition_for,
        )

    def _checkpoint_tasks(self) -> list[asyncio.Task]:
        if self.settings.checkpoint_key is None:
            CHECKPOINTS_ENABLED.labels(self.service).set(0)
            log.warning("WUGUAN_CHECKPOINT_KEY is not set: no signed checkpoints of %s's chains", self.service)
            return []
        checkpointer = Checkpointer(
            service=self.service, pool=self.checkpoint_pool, producer=self.producer,
            key=load_private(self.settings.checkpoint_key),
            every_decisions=self.settings.checkpoint_every_decisions, every_s=self.settings.checkpoint_every_s,
            topic=self.settings.checkpoint_topic,
            topics={*self.definition.decider.input_topics, timer_topic(self.service)},
            partitions=self.settings.partitions,
        )
        return [asyncio.create_task(checkpointer.run(), name=f"{self.service}-checkpoints")]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.pipeline is not None:
            await self.pipeline.close()
        if self.producer is not None:
            await self.producer.stop()
        for pool in (self.pool, self.checkpoint_pool):
            if pool is not None:
                await pool.close()

    def _zero_counters(self) -> None:
        """Labelled counters appear at 0 from the start, so rate() and increase() see the
        first dead letter or retry instead of a series that begins at 1."""
        for topic in self.definition.decider.input_topics:
            for code in ERROR_CODES | {"processing_error", "duplicate_event_id", STREAM_BLOCKED}:
                DEAD_LETTERS.labels(self.service, topic, code)
        STORE_RETRIES.labels(self.service)
        STORE_BLOCKED.labels(self.service).set(0)
        CONCURRENCY_CONFLICTS.labels(self.service)
        DEAD_LETTER_SEND_FAILURES.labels(self.service)

    async def _watch_lag(self) -> None:
        while True:
            await asyncio.sleep(5)
            try:
                checks = await self.health()
                UP.labels(self.service).set(1 if all(v == "ok" for v in checks.values()) else 0)
            except Exception:
                UP.labels(self.service).set(0)
            try:
                consumer = self.app.consumer
                lag = 0
                for tp in consumer.assignment():
                    position = await consumer.position(tp)
                    if position is not None:
                        lag += max(0, consumer.highwater(tp) - position)
                CONSUMER_LAG.labels(self.service).set(lag)
            except Exception:  # lag is advisory; never let it stop the worker
                pass

    async def health(self) -> dict:
        checks = {}
        try:
            async with self.pool.acquire(timeout=2) as conn:
                await conn.fetchval("SELECT 1", timeout=2)
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = type(exc).__name__
        try:
            await asyncio.wait_for(self.producer.client.fetch_all_metadata(), 2)
            checks["broker"] = "ok"
        except Exception as exc:
            checks["broker"] = type(exc).__name__
        # SELECT 1 passes on a database that refuses writes; the processor knows better.
        blocked_by = self.processor.blocked_by if self.processor is not None else None
        checks["store"] = "ok" if blocked_by is None else f"refusing writes ({blocked_by})"
        return checks


def create_app(definition: ServiceDefinition, settings: Settings) -> faust.App:
    set_fetch_waits(settings.fetch_max_wait_ms, settings.fetch_idle_wait_ms)
    decider = definition.decider
    service = decider.service
    app = faust.App(consumer_group(service), **faust_settings(settings, service))
    runtime = Runtime(app, definition, settings)
    app.wuguan_runtime = runtime

    @app.service
    class Adapters(mode.Service):
        async def on_start(self) -> None:
            await runtime.start()

        async def on_stop(self) -> None:
            await runtime.stop()

    channel = app.topic(*decider.input_topics, timer_topic(service), value_type=bytes, key_type=bytes)

    # The agent only subscribes the worker to its topics: BatchConsumer hands every fetch to
    # process_batch below, and commits its offsets once process_batch has made it durable.
    @app.agent(channel, name=f"{service}-decide")
    async def decide(stream):
        async for _ in stream:  # pragma: no cover - nothing is delivered one by one
            pass

    async def process_batch(messages: list[InputMessage], generation: int) -> asyncio.Future:
        await runtime.ready.wait()
        return await runtime.pipeline.submit(messages, generation)

    batch_consumer.deliver_batches(app, process_batch, service=service, max_bytes=settings.batch_max_bytes)

    @app.page("/healthz")
    async def healthz(web, request):
        if not runtime.ready.is_set():
            return web.json({"status": "starting"}, status=503)
        checks = await runtime.health()
        ok = all(v == "ok" for v in checks.values())
        UP.labels(service).set(1 if ok else 0)
        return web.json({"status": "ready" if ok else "unavailable", **checks}, status=200 if ok else 503)

    @app.page("/livez")
    async def livez(web, request):
        # Alive means the event loop answers; dependencies belong to /healthz (readiness),
        # so a database failover does not restart every replica.
        return web.json({"status": "alive"})

    @app.page("/metrics")
    async def metrics_page(web, request):
        # aiohttp refuses a charset inside content_type, so the exposition type goes in a header.
        return web.bytes(generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    return app


def run_worker(definition: ServiceDefinition, settings: Settings) -> None:
    app = create_app(definition, settings)
    fmt = log_format()  # json: python-json-logger instead of faust's coloured text
    worker = faust.Worker(app, loglevel=settings.log_level.lower(), quiet=True,
                          logging_config=logging_config(fmt, settings.log_level) if fmt == "json" else None)
    tune_collector(settings.gc_young_threshold)
    worker.execute_from_commandline()
