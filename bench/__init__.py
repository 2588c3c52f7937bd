"""Wuguan's proof harness: `make bench` (throughput against the raw aiokafka+asyncpg ceiling,
latency, RSS, rebuild rate) and `make chaos` (kill -9 and a Postgres restart mid-run)."""
