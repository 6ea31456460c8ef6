-- Writers of a server process tell its sequencer themselves instead of NOTIFYing at commit.
--
-- A transaction that NOTIFYs takes a database-wide lock in its commit and keeps it until
-- its commit record is flushed, so that notifications queue in commit order. With the NOTIFY
-- of migration 0006 in every events insert, every write of every hall committed one WAL
-- flush after the other: the deep-queue drain of bench/core.py had about two connections
-- waiting on that lock (pg_stat_activity: Lock, object) at any moment, with a third of the
-- machine idle.
--
-- Connections of a server's pool set hall.commit_notice = 'in_process' for their session
-- (hall.storage.commit_notices): the server notes the hall of each events insert and pokes
-- its own sequencer when the connection comes back to the pool; the sequencer's run still
-- notifies {"hall", "seq"} for every process's live feed. Any other writer (the CLI, a
-- script, a psql session) notifies as before.

CREATE OR REPLACE FUNCTION events_pending() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.seq := NULL;  -- only the sequencer numbers events
    IF current_setting('hall.commit_notice', true) IS DISTINCT FROM 'in_process' THEN
        -- Delivered at COMMIT; identical payloads of one transaction are delivered once.
        PERFORM pg_notify('hall_events', json_build_object('hall', NEW.hall_id)::text);
    END IF;
    RETURN NEW;
END $$;
