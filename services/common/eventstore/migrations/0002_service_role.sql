-- The role the services run as: it may read and append events but never change them.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'wuguan_service') THEN
        CREATE ROLE wuguan_service NOLOGIN;
    END IF;
    BEGIN
        EXECUTE format('GRANT wuguan_service TO %I', current_user);
    EXCEPTION WHEN OTHERS THEN
        RAISE NOTICE 'could not grant wuguan_service to %: %', current_user, SQLERRM;
    END;
END $$;

REVOKE ALL ON events FROM wuguan_service;
GRANT SELECT, INSERT ON events TO wuguan_service;
GRANT SELECT, INSERT, UPDATE ON event_chain_head TO wuguan_service;
GRANT SELECT, INSERT ON processed_inputs TO wuguan_service;
GRANT SELECT, INSERT ON dead_lettered_inputs TO wuguan_service;
GRANT SELECT, INSERT, UPDATE ON business_clocks TO wuguan_service;
GRANT SELECT, INSERT, UPDATE ON relay_checkpoints TO wuguan_service;
GRANT SELECT, INSERT, UPDATE, DELETE ON pending_timers TO wuguan_service;
