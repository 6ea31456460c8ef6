-- Reports attribute a finished ticket to the clerk who had opened its counter: the latest
-- counter.opened event of that counter before the ticket's last event. This partial index
-- makes that a single index probe per ticket; only counter.opened rows are indexed, so the
-- hot paths' inserts pay nothing beyond the predicate check.
CREATE INDEX manager_counter_opened
    ON events (hall_id, counter_number, id) WHERE type = 'counter.opened';

-- Alarms acknowledged on the dashboard, whatever raised them. An alarm is a condition with a
-- stable key (``wait:BDC:1234`` for a service's oldest waiting ticket, ``device:bus1:3:<since>``,
-- ``printer:p1:<since>``, or a key from another slice's ``alarms_<slice>`` view); acknowledging
-- stores the key, so the same condition stays acknowledged and a new one shows again.
CREATE TABLE manager_alarm_acks (
    hall_id    text NOT NULL REFERENCES halls (id),
    key        text NOT NULL CHECK (length(key) <= 200),
    acked_by   text NOT NULL,
    acked_at   timestamptz NOT NULL,
    PRIMARY KEY (hall_id, key)
);
