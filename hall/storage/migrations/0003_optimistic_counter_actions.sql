-- Counter actions are optimistic: an action reads its counter (and the counter's active
-- ticket) without a lock, decides in the application, then writes the counter, the ticket
-- and the events in one autocommitted statement that holds only if the counter still has the
-- version it was read at and the ticket is still in the state it was read in. No lock is
-- held across a round trip (bench/core.py measured BEGIN … COMMIT with a counter row lock
-- costing five round trips an action).

ALTER TABLE counters ADD COLUMN version bigint NOT NULL DEFAULT 0;

-- Called by that statement with how many counter and ticket rows it updated (1 for a part
-- the action does not write). Raising rolls the whole statement back, so a counter is never
-- written without its ticket or the other way round; the SQLSTATE tells the application
-- which one moved: HQ002 the counter (read it again), HQ001 the ticket (another counter
-- took it first).
CREATE FUNCTION check_action_write(counter_rows bigint, ticket_rows bigint)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF counter_rows <> 1 THEN
        RAISE EXCEPTION 'counter changed since it was read' USING ERRCODE = 'HQ002';
    END IF;
    IF ticket_rows <> 1 THEN
        RAISE EXCEPTION 'ticket changed since it was read' USING ERRCODE = 'HQ001';
    END IF;
    RETURN true;
END $$;
