-- Cases imported from the upstream platform: their status changes are the platform's own, so
-- case events written by the import (actor 'upstream:import') are not sent back upstream.
CREATE OR REPLACE FUNCTION evaluator_enqueue_case_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.actor = 'upstream:import' THEN
        RETURN NULL;
    END IF;
    INSERT INTO upstream_outbox (hall_id, key, kind, ref_id, next_attempt_at, created_at)
    VALUES (NEW.hall_id, NEW.hall_id || ':case:' || NEW.case_id || ':' || NEW.id,
            'case_status', NEW.id, now(), now());
    PERFORM pg_notify('evaluator_outbox', NEW.hall_id);
    RETURN NULL;
END $$;
