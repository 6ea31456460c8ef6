-- A number counter's hall is checked without locking the hall's row (issue 9, PostgreSQL's
-- CPU per issued ticket).
--
-- The foreign key number_counters (hall_id) -> halls checked nothing at the usual update
-- of the counter's row (the key does not change), except when the row being updated was
-- written by the same transaction: then PostgreSQL checks the key again, and the check
-- locks the hall's row (FOR KEY SHARE) until the transaction ends. A batch of the group
-- commit numbers up to 32 tickets of one group in one transaction, so every ticket of a
-- batch but the first ran that check (an SPI query, about 3 % of a backend's CPU per
-- ticket in a profile of pipelined batches of 16), and every batch locked the hall's row,
-- which the other groups' batches and the sequencer (UPDATE halls SET last_seq) hold at the
-- same time: a WAL record and a dirtied page per batch, and a MultiXact when they meet.
--
-- As for events (migration 0101): the hall is read without a lock when a counter row is
-- created or moved to another hall, and deleting a hall, or changing its id, while number
-- counters refer to it is refused after LOCK TABLE number_counters IN SHARE MODE has waited
-- for every numbering in flight (and keeps new ones out until the delete ends), so an
-- insert and a delete cannot cross.
ALTER TABLE number_counters DROP CONSTRAINT number_counters_hall_id_fkey;

CREATE FUNCTION number_counters_hall_exists() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM FROM halls WHERE id = NEW.hall_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'number counter of unknown hall %', NEW.hall_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END $$;

-- Only a row's creation (the day's first ticket of a group) or a change of its hall runs it:
-- numbering a ticket updates the row without touching hall_id. An AFTER trigger, because a
-- BEFORE UPDATE row trigger, even one limited to a column the update does not set, makes
-- every update of the table lock its row first (a WAL record per ticket numbered).
CREATE TRIGGER number_counters_hall AFTER INSERT OR UPDATE OF hall_id ON number_counters
    FOR EACH ROW EXECUTE FUNCTION number_counters_hall_exists();

CREATE FUNCTION halls_number_counters_referenced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.id IS NOT DISTINCT FROM OLD.id THEN
        RETURN NEW;
    END IF;
    LOCK TABLE number_counters IN SHARE MODE;
    PERFORM FROM number_counters WHERE hall_id = OLD.id LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'hall % is referenced by number counters', OLD.id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END $$;

CREATE TRIGGER halls_number_counters_referenced BEFORE DELETE ON halls
    FOR EACH ROW EXECUTE FUNCTION halls_number_counters_referenced();
-- AFTER, for the reason above: the sequencer updates its hall's row at every run.
CREATE TRIGGER halls_number_counters_rekeyed AFTER UPDATE OF id ON halls
    FOR EACH ROW EXECUTE FUNCTION halls_number_counters_referenced();
