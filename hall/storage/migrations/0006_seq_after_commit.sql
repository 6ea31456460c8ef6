-- Event seqs are assigned after commit, by a sequencer, instead of at insert.
--
-- Since 0004 the insert trigger took the seq from halls.last_seq, whose row lock lasts until
-- COMMIT. On the database as shipped (durable: every COMMIT waits for its WAL flush) that
-- made every write of a hall wait for the previous writer's flush: one flush at a time per
-- hall, whatever the number of connections, so a hall's write rate was bounded by the
-- disk's flush latency and PostgreSQL's group commit could never batch two of them.
--
-- Now a writer inserts its events with seq NULL and takes no hall-wide lock; its commit
-- notifies 'hall_events' with {"hall": id}. sequence_events(hall), run by every server
-- process as soon as it hears of such a commit (hall.storage.sequencer), numbers all
-- committed unnumbered events of the hall in id order under an advisory lock, moves
-- halls.last_seq and notifies {"hall": id, "seq": last}. Readers still see a per-hall
-- gap-free seq, and a seq becomes visible only together with every smaller one. Writes
-- that conflict (same counter, same ticket, same number group) take their row locks before
-- inserting their events, so their event ids, and hence their seqs, follow commit order.

DROP TRIGGER events_assign_seq ON events;
DROP FUNCTION events_assign_seq();
ALTER TABLE events ALTER COLUMN seq DROP NOT NULL;

CREATE FUNCTION events_pending() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.seq := NULL;  -- only the sequencer numbers events
    -- Delivered at COMMIT; identical payloads of one transaction are delivered once.
    PERFORM pg_notify('hall_events', json_build_object('hall', NEW.hall_id)::text);
    RETURN NEW;
END $$;

CREATE TRIGGER events_pending BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_pending();

-- The sequencer's work list: small, since it runs right after each commit.
CREATE INDEX events_unsequenced ON events (hall_id, id) WHERE seq IS NULL;

-- Events stay append-only, but for the sequencer numbering them once.
CREATE FUNCTION events_only_sequenced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.seq IS NULL AND NEW.seq IS NOT NULL
       AND (NEW.id, NEW.hall_id, NEW.type, NEW.at, NEW.actor, NEW.ticket_id,
            NEW.counter_number, NEW.details)
           IS NOT DISTINCT FROM
           (OLD.id, OLD.hall_id, OLD.type, OLD.at, OLD.actor, OLD.ticket_id,
            OLD.counter_number, OLD.details) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'events is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;

DROP TRIGGER events_append_only ON events;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_only_sequenced();

-- Number the hall's committed, unnumbered events; return the hall's last seq. Sequencers of
-- one hall run one at a time (the advisory lock; re-entrant for a session that already holds
-- it, as the snapshot reader does); each statement after the lock sees every earlier
-- sequencer's work. Without anything to number it writes nothing, so its commit needs no
-- WAL flush.
CREATE FUNCTION sequence_events(p_hall text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_last  bigint;
    v_count bigint;
BEGIN
    -- Behind a stuck holder, fail after a while (the caller retries) rather than wait forever.
    PERFORM set_config('lock_timeout', '5s', true);
    PERFORM pg_advisory_xact_lock(7101002, hashtext(p_hall));
    SELECT last_seq INTO v_last FROM halls WHERE id = p_hall;
    IF v_last IS NULL THEN
        RETURN NULL;
    END IF;
    UPDATE events e SET seq = v_last + p.n
    FROM (SELECT id, row_number() OVER (ORDER BY id) AS n
          FROM events WHERE hall_id = p_hall AND seq IS NULL) p
    WHERE e.id = p.id;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    IF v_count > 0 THEN
        UPDATE halls SET last_seq = v_last + v_count WHERE id = p_hall;
        PERFORM pg_notify('hall_events',
                          json_build_object('hall', p_hall, 'seq', v_last + v_count)::text);
    END IF;
    RETURN v_last + v_count;
END $$;
