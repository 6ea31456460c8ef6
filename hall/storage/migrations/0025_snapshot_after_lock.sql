-- The snapshot a statement would take now, rather than the one its statement took when it
-- began (pg_current_snapshot()). A VOLATILE function takes a fresh snapshot for what it runs,
-- so called in a statement's select list after a row lock that had to wait, it sees the
-- transaction that held the lock as committed, which the statement's own snapshot does not.
-- A device event's key statement (claim_event_locking_counter) takes its counter's lock and,
-- with this, the read point of the key's render in the same round trip: two keys of one
-- counter are ordered by that lock, and the later one's read point must include the earlier.
CREATE FUNCTION snapshot_now() RETURNS text LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN pg_current_snapshot()::text;
END
$$;
