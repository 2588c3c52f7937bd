-- A service's business clock is kept per input partition (its chain) and read as their maximum
-- (issue 13: no serialization point between partitions).
--
-- Each batch advanced one row per service, `business_clocks`, and an upsert holds its row locked
-- until the transaction commits: every write of a service waited for the one before it to
-- commit, whatever partitions they were for, so two workers of a service appended one at a time.
-- Now each batch advances the rows of its own partitions' chains, which only their owner writes
-- (store.chain_name), and `business_clocks` is a view of each service's latest. The value timers
-- fire against is the same: the latest business time among the inputs the service has decided.
--
-- Upgrade: a worker of an older release upserts into business_clocks, a view from here on; the
-- database refuses it (55000) and that worker holds its batch, offsets unmoved, until it is
-- replaced, as with migration 0010.
CREATE TABLE IF NOT EXISTS business_clock_partitions (
    service   text        NOT NULL,
    chain_id  text        NOT NULL,  -- the partition's chain; '-' holds the clock from before this migration
    watermark timestamptz NOT NULL,
    PRIMARY KEY (service, chain_id)
);

DO $$
BEGIN
    IF to_regclass('business_clocks') IS NOT NULL
       AND (SELECT relkind FROM pg_class WHERE oid = to_regclass('business_clocks')) = 'r' THEN
        -- no upsert of an older worker may commit between the copy and the drop
        LOCK TABLE business_clocks IN ACCESS EXCLUSIVE MODE;
        INSERT INTO business_clock_partitions (service, chain_id, watermark)
        SELECT service, '-', watermark FROM business_clocks ON CONFLICT DO NOTHING;
        DROP TABLE business_clocks;
    END IF;
END $$;

CREATE OR REPLACE VIEW business_clocks AS
SELECT service, max(watermark) AS watermark FROM business_clock_partitions GROUP BY service;

GRANT SELECT, INSERT, UPDATE ON business_clock_partitions TO wuguan_service;
GRANT SELECT ON business_clocks TO wuguan_service;
