-- Reports attribute a finished ticket to the clerk who had opened its counter: the latest
-- counter.opened event of that counter before the ticket's last event. This partial index
-- makes that a single index probe per ticket; only counter.opened rows are indexed, so the
-- hot paths' inserts pay nothing beyond the predicate check.
CREATE INDEX manager_counter_opened
    ON events (hall_id, counter_number, id) WHERE type = 'counter.opened';

-- Alarms acknowledged on the dashboard, whatever slice raised them. ``source`` names the
-- table or feed (device_alarms, …) and ``alarm_id`` its row; the alarm rows themselves stay
-- append-only in their own slice.
CREATE TABLE manager_alarm_acks (
    source     text NOT NULL,
    alarm_id   bigint NOT NULL,
    hall_id    text NOT NULL REFERENCES halls (id),
    acked_by   text NOT NULL,
    acked_at   timestamptz NOT NULL,
    note       text NOT NULL DEFAULT '',
    PRIMARY KEY (source, alarm_id)
);
