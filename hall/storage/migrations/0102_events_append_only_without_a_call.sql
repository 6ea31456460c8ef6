-- The sequencer's numbering of an event passes the append-only check without calling a
-- function (issue 9, CPU per operation).
--
-- Migration 0006 let events_only_sequenced() (PL/pgSQL) decide for every UPDATE of events
-- whether it only numbers the event; it ran once per numbered event, i.e. once per write.
-- The same condition is now the trigger's WHEN clause, evaluated by the executor itself: the
-- trigger fires, and refuses, exactly for the updates that do anything else. Deleting stays
-- refused by its own trigger.
DROP TRIGGER events_append_only ON events;
CREATE TRIGGER events_append_only BEFORE UPDATE ON events
    FOR EACH ROW
    WHEN (NOT (OLD.seq IS NULL AND NEW.seq IS NOT NULL
               AND (NEW.id, NEW.hall_id, NEW.type, NEW.at, NEW.actor, NEW.ticket_id,
                    NEW.counter_number, NEW.details)
                   IS NOT DISTINCT FROM
                   (OLD.id, OLD.hall_id, OLD.type, OLD.at, OLD.actor, OLD.ticket_id,
                    OLD.counter_number, OLD.details)))
    EXECUTE FUNCTION forbid_change();
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
DROP FUNCTION events_only_sequenced();
