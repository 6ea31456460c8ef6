-- What a pad shows depends on the last ticket finished at its counter; desired device state is
-- recomputed after every change, so that lookup must not scan the day's events.
CREATE INDEX events_finished_by_counter ON events (hall_id, counter_number, seq DESC)
    WHERE type = 'ticket.finished';
