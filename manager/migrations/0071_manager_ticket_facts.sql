-- Per-ticket report facts of closed business days (the roll-up), so a month's report groups
-- ~45,000 narrow rows instead of re-deriving them from the event log every time.
--
-- A day is rolled once every ticket of it is closed (done, no-show, cancelled) and the events
-- that could still concern it are in the past (two days after it); a report reads the rolled
-- days from here and works out the others (today, yesterday) from the event log as before.
-- Nothing here is a source of truth: the rows are what manager/reports.py derives from
-- ``tickets`` and ``events``, and dropping a day's rows and its ``manager_rolled_days`` row
-- makes the next report derive it again. Ratings and the services' target waits are not
-- stored: reports join them as they are at report time.
CREATE TABLE manager_rolled_days (
    hall_id       text NOT NULL REFERENCES halls (id),
    business_day  date NOT NULL,
    tickets       integer NOT NULL CHECK (tickets >= 0),
    rolled_at     timestamptz NOT NULL,
    PRIMARY KEY (hall_id, business_day)
);

CREATE TABLE manager_ticket_facts (
    ticket_id         bigint PRIMARY KEY REFERENCES tickets (id),
    hall_id           text NOT NULL,
    business_day      date NOT NULL,
    state             ticket_state NOT NULL CHECK (state IN ('done', 'no_show', 'cancelled')),
    service           text NOT NULL,        -- the service asked for (before any transfer)
    wait_s            float8,               -- issue -> first call
    service_s         float8,               -- start -> finish (served tickets)
    counter           integer,              -- counter of the closing event
    clerk             text,                 -- who had opened that counter
    transferred       boolean NOT NULL,
    transfer_counter  integer,              -- counter of the first transfer
    transfer_clerk    text,
    FOREIGN KEY (hall_id, business_day) REFERENCES manager_rolled_days (hall_id, business_day)
);
CREATE INDEX manager_ticket_facts_day ON manager_ticket_facts (hall_id, business_day);

-- Assessment deductions (考核扣分) are summed from the supervision alarms' events of the
-- period; only those rows are indexed, so the hot paths' inserts pay nothing beyond the check.
CREATE INDEX manager_supervision_alarm_events
    ON events (hall_id, at) WHERE type = 'supervision.alarm';

-- Staffing advice's "counters working": per rolled day, service and local hour, how many
-- counters called a ticket of the service in that hour (from ``ticket.called`` events of the
-- day, midnight to midnight local time).
CREATE TABLE manager_called_hours (
    hall_id       text NOT NULL,
    business_day  date NOT NULL,
    service       text NOT NULL,
    hour          smallint NOT NULL CHECK (hour BETWEEN 0 AND 23),
    counters      integer NOT NULL CHECK (counters > 0),
    PRIMARY KEY (hall_id, business_day, service, hour),
    FOREIGN KEY (hall_id, business_day) REFERENCES manager_rolled_days (hall_id, business_day)
);
