"""The metric catalogue shared by every worker. Labels carry no personal data (A.PRIVACY):
only service, topic, decision type, outcome and error code, all from closed sets."""
from prometheus_client import Counter, Gauge, Histogram

INPUTS_CONSUMED = Counter(
    "wuguan_inputs_consumed_total", "Input events decided and stored", ["service", "topic"]
)
INPUTS_REDELIVERED = Counter(
    "wuguan_inputs_redelivered_total",
    "Input events skipped because they were already processed (redelivery or republish)",
    ["service", "topic"],
)
DEAD_LETTERS = Counter(
    "wuguan_dead_letters_total", "Input events sent to the dead-letter topic", ["service", "topic", "code"]
)
DECISIONS = Counter(
    "wuguan_decisions_total", "Decisions appended to the event store", ["service", "decision_type", "outcome"]
)
CONCURRENCY_CONFLICTS = Counter(
    "wuguan_concurrency_conflicts_total", "Batches retried because a stream moved on", ["service"]
)
STORE_RETRIES = Counter(
    "wuguan_store_retries_total", "Batches retried because the database was unavailable", ["service"]
)
BATCHES_DECIDED_AHEAD = Counter(
    "wuguan_batches_decided_ahead_total",
    "Batches that came while the batch before was being written: decided then and kept; redone because that"
    " write failed; or undecided (it needs what that batch leaves in the store, or deciding it failed) and"
    " decided after it",
    ["service", "outcome"],
)
BATCH_SECONDS = Histogram(
    "wuguan_batch_seconds",
    "Time from a batch's delivery to its outcome being durable (deciding, waiting for the batch before, storing)",
    ["service"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_INPUTS = Histogram(
    "wuguan_batch_inputs", "Inputs in one batch (one fetch, up to WUGUAN_BATCH_SIZE)", ["service"],
    buckets=(1, 5, 20, 50, 100, 200, 350, 500, 1000, 2000, 5000),
)
APPEND_SECONDS = Histogram(
    "wuguan_store_append_seconds",
    "Time to append one batch of decisions (lock, COPY, chain head)",
    ["service"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)
DECISION_LATENCY = Histogram(
    "wuguan_decision_latency_seconds",
    "From the input's Kafka timestamp to its decisions being committed",
    ["service"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RELAY_PUBLISHED = Counter(
    "wuguan_relay_published_total", "Decisions published to the decision topic", ["service"]
)
RELAY_LAG = Gauge(
    "wuguan_relay_lag_events", "Stored decisions not yet published to the decision topic", ["service"]
)
CONSUMER_LAG = Gauge(
    "wuguan_consumer_lag_messages", "Messages behind the partition end, summed over assigned partitions", ["service"]
)
TIMERS_FIRED = Counter("wuguan_timers_published_total", "Due timers published for processing", ["service"])
UP = Gauge("wuguan_ready", "1 when the broker and the database are reachable", ["service"])
VERIFY_OK = Gauge("wuguan_verify_ok", "1 when the last walk of the service's hash chains found them intact, 0 when"
                  " tampered", ["service"])
VERIFY_LAST_RUN = Gauge(
    "wuguan_verify_last_run_timestamp_seconds", "When the worker last walked its service's hash chains", ["service"]
)
VERIFY_EVENTS_CHECKED = Gauge(
    "wuguan_verify_events_checked", "Events of the service's chains the worker's last walk checked", ["service"]
)
STORE_BLOCKED = Gauge(
    "wuguan_store_blocked",
    "1 while the database refuses the worker's writes (permission, read-only, disk full, down):"
    " consumption waits, offsets stay where they are",
    ["service"],
)
DEAD_LETTERS_UNSENT = Gauge(
    "wuguan_dead_letters_unsent",
    "Dead letters stored in Postgres and not yet acknowledged by the broker", ["service"],
)
DEAD_LETTERS_UNDELIVERED = Gauge(
    "wuguan_dead_letters_undelivered",
    "Stored dead letters whose sending has failed at least once; the relay keeps retrying", ["service"],
)
DEAD_LETTER_SEND_FAILURES = Counter(
    "wuguan_dead_letter_send_failures_total", "Attempts to send a dead letter that the broker refused or that failed",
    ["service"],
)
OFFSET_COMMIT_FAILURES = Counter(
    "wuguan_offset_commit_failures_total",
    "Offset commits refused after their batch was durable; the inputs are redelivered and skipped", ["service"],
)
CHECKPOINTS_ENABLED = Gauge(
    "wuguan_checkpoints_enabled", "1 when the worker signs checkpoints of its chains (WUGUAN_CHECKPOINT_KEY set)",
    ["service"],
)
CHECKPOINTS_SIGNED = Counter("wuguan_checkpoints_signed_total", "Checkpoints signed and stored", ["service"])
CHECKPOINT_LAST_PUBLISHED = Gauge(
    "wuguan_checkpoint_last_published_timestamp_seconds",
    "When the worker last had a signed checkpoint acknowledged by the broker (its start until then)", ["service"],
)
CHECKPOINT_FAILURES = Counter(
    "wuguan_checkpoint_failures_total",
    "Checkpoint attempts that failed: stage=refused (a chain no longer extends its signed tree),"
    " sign (the database was away), publish (the broker refused; retried with backoff)", ["service", "stage"],
)
CHECKPOINT_SECONDS = Histogram(
    "wuguan_checkpoint_seconds", "Time to read, check, grow and sign one checkpoint (its cost to the worker)",
    ["service"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
GC_PAUSE_SECONDS = Histogram(
    "wuguan_gc_pause_seconds",
    "How long one run of the cyclic garbage collector stopped the worker, by generation",
    ["service", "generation"], buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)
EVENT_LOOP_LAG = Histogram(
    "wuguan_event_loop_lag_seconds",
    "How late the worker's event loop ran a wake-up due every 50 ms (a batch's CPU time, or a starved process)",
    ["service"], buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
