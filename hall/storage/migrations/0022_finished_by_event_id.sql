-- The last ticket finished at a counter (what its pad shows) is found by event id now: an
-- event's seq may still be NULL right after its commit (migration 0006).
DROP INDEX events_finished_by_counter;
CREATE INDEX events_finished_by_counter ON events (hall_id, counter_number, id DESC)
    WHERE type = 'ticket.finished';
