-- A unique claim is carried by the decision that makes it, not by a row of its own (issue 13,
-- lean rows): one row per CDR less, which was half of what a CDR wrote.
--
-- A claim (services/common/runtime/claims.py) is a key a service may use once, with the value its
-- first use recorded: a CDR's switch and origin id (CP3.DEDUP). The decision that makes it now
-- holds its key and value in `claim_key` and `claim_value`, and a partial unique index refuses a
-- second decision making the same key, as the claims table's primary key did: two workers racing
-- for one key meet it as a concurrency conflict and retry. Claims of stores written before this
-- migration stay in unique_claim_rows (the table renamed), as does any claim past a decision's
-- first (no decider makes more than one today). `unique_claims` is now a view of both, so
-- deciders, verify and chaos read it unchanged.
--
-- Upgrade: a worker of an older release inserts into unique_claims, which is a view from here on;
-- the database refuses it (55000) and that worker holds its batch, offsets unmoved, until it is
-- replaced. The migration runs in one transaction that holds `events` locked (readers and
-- writers) while the index is built from the whole table. On a large store, first add the two
-- columns (instant), then build the index with CREATE UNIQUE INDEX CONCURRENTLY under this name,
-- check it is valid (pg_index.indisvalid: a failed concurrent build leaves an invalid index that
-- IF NOT EXISTS would accept), then let the workers migrate.
--
-- A key in unique_claim_rows (an older store's) and the same key on a decision are not refused by
-- the database: the decider reads the view and does not make a claim it finds there.
ALTER TABLE events
    ADD COLUMN IF NOT EXISTS claim_key   text,
    ADD COLUMN IF NOT EXISTS claim_value text;

-- The key leads: a batch asks for its keys with `claim_key = ANY(...)`, and with the service first a
-- planner holding statistics from before the first claim filtered every claim of the service.
CREATE UNIQUE INDEX IF NOT EXISTS events_claims ON events (claim_key, service) WHERE claim_key IS NOT NULL;

ALTER TABLE IF EXISTS unique_claims RENAME TO unique_claim_rows;

CREATE OR REPLACE VIEW unique_claims AS
SELECT service, claim_key, value, position
FROM unique_claim_rows
UNION ALL
SELECT service, claim_key, claim_value, global_position
FROM events
WHERE claim_key IS NOT NULL;

GRANT SELECT ON unique_claims TO wuguan_service;
