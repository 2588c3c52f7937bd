-- Unique claims: keys a service has used once and must recognise for ever (a CDR's switch and
-- origin id, CP3.DEDUP), with the value the first use recorded. Kept here rather than in the
-- cached stream state, so a worker's memory does not grow with every CDR it has seen. Written in
-- the transaction of the decision that makes the claim, like pending_timers; `position` names
-- that decision in the log.
CREATE TABLE IF NOT EXISTS unique_claims (
    service   text   NOT NULL,
    claim_key text   NOT NULL,
    value     text   NOT NULL,
    position  bigint NOT NULL,
    PRIMARY KEY (service, claim_key)
);

GRANT SELECT, INSERT ON unique_claims TO wuguan_service;
