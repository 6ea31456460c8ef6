-- A call opens its pad session without a subtransaction and without locking the hall's row
-- (issue 9, CPU per operation; bench/pg_per_op.py).
--
-- evaluator_open_pad_session() (0050) inserted inside BEGIN … EXCEPTION, so that a random id
-- already taken could be drawn again: every call event opened a subtransaction. Its foreign
-- keys then locked their rows FOR KEY SHARE: the ticket's row, just updated by the call's own
-- top-level transaction, was locked again by the subtransaction, and the hall's row, which
-- every counter's call and the hall's sequencer (UPDATE halls SET last_seq) hold at the same
-- time. A row locked by two transactions at once needs a MultiXact (a write to pg_multixact
-- and a WAL record): about one call in two created one.
--
-- Now the insert is ON CONFLICT DO NOTHING on any unique index, in the trigger's own
-- transaction: if nothing was inserted and the (hall, counter, ticket) has no session, the
-- random id was taken and another is drawn. The ticket's foreign key stays (its lock is the
-- call's own, taken by its UPDATE: no new lock). The hall's foreign key is replaced by the
-- pattern of core migration 0101: a plain read at insert, and deleting a hall that pad
-- sessions refer to is refused after waiting for every pad_sessions insert in flight.
CREATE OR REPLACE FUNCTION evaluator_open_pad_session() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    sid bigint;
BEGIN
    IF NEW.counter_number IS NULL OR NEW.ticket_id IS NULL THEN
        RETURN NULL;
    END IF;
    LOOP
        sid := evaluator_random_session();
        CONTINUE WHEN sid = 0;
        INSERT INTO pad_sessions (id, hall_id, counter_number, ticket_id, clerk, opened_at)
        SELECT sid, NEW.hall_id, NEW.counter_number, NEW.ticket_id, c.clerk, NEW.at
        FROM (SELECT 1) one
        LEFT JOIN counters c ON c.hall_id = NEW.hall_id AND c.number = NEW.counter_number
        ON CONFLICT DO NOTHING;
        -- Not inserted: either this visit's session exists (a recall, a second call), or the
        -- random id was taken (then draw again).
        EXIT WHEN FOUND OR EXISTS (
            SELECT 1 FROM pad_sessions
            WHERE hall_id = NEW.hall_id AND counter_number = NEW.counter_number
              AND ticket_id = NEW.ticket_id);
    END LOOP;
    RETURN NULL;
END $$;

ALTER TABLE pad_sessions DROP CONSTRAINT pad_sessions_hall_id_fkey;

CREATE FUNCTION evaluator_pad_session_hall() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM FROM halls WHERE id = NEW.hall_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pad session of unknown hall %', NEW.hall_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER pad_sessions_hall BEFORE INSERT OR UPDATE OF hall_id ON pad_sessions
    FOR EACH ROW EXECUTE FUNCTION evaluator_pad_session_hall();

-- The SHARE lock waits for every transaction that inserted pad sessions to end and keeps new
-- inserts out until this one ends, so the check sees every session that will refer to it.
CREATE FUNCTION evaluator_hall_pad_sessions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE pad_sessions IN SHARE MODE;
    PERFORM FROM pad_sessions WHERE hall_id = OLD.id LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'hall % is referenced by pad sessions', OLD.id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN OLD;
END $$;
CREATE TRIGGER halls_pad_sessions_referenced BEFORE DELETE ON halls
    FOR EACH ROW EXECUTE FUNCTION evaluator_hall_pad_sessions();
