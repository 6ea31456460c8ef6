-- tickets_tally runs only for the ticket writes it has something to do for (issue 9,
-- PostgreSQL's work per operation).
--
-- The trigger fired after every update that sets a ticket's state, and every counter action
-- sets it: starting and finishing a ticket (two of the three requests that serve one) called
-- the PL/pgSQL function, and queued its after-trigger event, only for it to find that the
-- ticket neither left nor entered the waiting queue and return. The same test is now the
-- trigger's WHEN clause, which PostgreSQL evaluates without a function call and, false,
-- without queueing anything. Inserts always count (the service day, and the waiting tally
-- for a waiting ticket), as do moves to another service or hall (the service check of
-- migration 0105).
DROP TRIGGER tickets_tally ON tickets;
CREATE TRIGGER tickets_tally AFTER INSERT ON tickets
    FOR EACH ROW EXECUTE FUNCTION tickets_tally();
CREATE TRIGGER tickets_tally_update AFTER UPDATE OF state, service_code, hall_id ON tickets
    FOR EACH ROW
    WHEN (OLD.state = 'waiting' OR NEW.state = 'waiting'
          OR OLD.service_code IS DISTINCT FROM NEW.service_code
          OR OLD.hall_id IS DISTINCT FROM NEW.hall_id)
    EXECUTE FUNCTION tickets_tally();
