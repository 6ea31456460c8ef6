-- Hot paths whose cost does not grow with the queue or the day.
--
-- Call-next reads only the heads of its queues: per service, the oldest few normal and the
-- oldest few priority tickets (queue_heads), the tickets transferred or called back to the
-- counter (queue_targeted) and the appointments whose slot has begun (queue_appointments),
-- each an index range read that stops at its LIMIT.
-- Waiting counts and "people ahead" come from tallies kept by the statements that move
-- tickets in and out of the waiting state (the trigger below), and each service's tickets
-- issued per day likewise, instead of counting the queue or the day's tickets.

DROP INDEX tickets_waiting;
-- Position in a service's queue (people ahead or behind a ticket), and the head of a queue
-- for transfers placed at the front.
CREATE INDEX tickets_waiting ON tickets (hall_id, service_code, queue_key, id)
    WHERE state = 'waiting';
CREATE INDEX tickets_queue_heads
    ON tickets (hall_id, service_code, (priority_class IS NOT NULL), queue_key, id)
    WHERE state = 'waiting' AND target_counter IS NULL;
CREATE INDEX tickets_queue_targeted ON tickets (hall_id, target_counter, queue_key, id)
    WHERE state = 'waiting' AND target_counter IS NOT NULL;
CREATE INDEX tickets_queue_appointments ON tickets (hall_id, service_code, appointment_start, id)
    WHERE state = 'waiting' AND target_counter IS NULL AND appointment_start IS NOT NULL;
-- Calling a specific number (叫指定号, 回呼) finds it among the day's tickets by number.
CREATE INDEX tickets_number ON tickets (hall_id, business_day, display_number);
-- The screens' recent calls, without walking back through the day's other events; calls
-- just committed and not yet numbered (hall screens are updated on the commit) come first.
CREATE INDEX events_calls ON events (hall_id, seq DESC NULLS FIRST, id DESC)
    WHERE type IN ('ticket.called', 'ticket.recalled');

-- Waiting tickets per service, spread over one row per acting counter ("slot"; 0 for kiosks
-- and anything not at a counter) so that counters calling from one queue at the same time
-- never wait for each other's row: a service's count is the sum of its rows.
CREATE TABLE queue_tallies (
    hall_id       text NOT NULL,
    service_code  text NOT NULL,
    slot          integer NOT NULL,
    waiting       bigint NOT NULL,
    PRIMARY KEY (hall_id, service_code, slot)
);

-- Tickets issued per service and business day (quotas, the kiosk's "remaining").
CREATE TABLE service_days (
    hall_id       text NOT NULL,
    service_code  text NOT NULL,
    business_day  date NOT NULL,
    issued        integer NOT NULL,
    PRIMARY KEY (hall_id, service_code, business_day)
);

CREATE FUNCTION tickets_tally() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    was_waiting boolean := TG_OP = 'UPDATE' AND OLD.state = 'waiting';
    is_waiting  boolean := NEW.state = 'waiting';
    v_slot      integer;
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO service_days AS d (hall_id, service_code, business_day, issued)
        VALUES (NEW.hall_id, NEW.service_code, NEW.business_day, 1)
        ON CONFLICT (hall_id, service_code, business_day)
        DO UPDATE SET issued = d.issued + 1;
    END IF;
    IF was_waiting AND is_waiting AND OLD.service_code = NEW.service_code THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        v_slot := coalesce(NEW.counter_number, OLD.counter_number, NEW.target_counter,
                           NEW.parked_by, 0);
    ELSE
        v_slot := 0;
    END IF;
    IF was_waiting THEN
        INSERT INTO queue_tallies AS q (hall_id, service_code, slot, waiting)
        VALUES (OLD.hall_id, OLD.service_code, v_slot, -1)
        ON CONFLICT (hall_id, service_code, slot) DO UPDATE SET waiting = q.waiting - 1;
    END IF;
    IF is_waiting THEN
        INSERT INTO queue_tallies AS q (hall_id, service_code, slot, waiting)
        VALUES (NEW.hall_id, NEW.service_code, v_slot, 1)
        ON CONFLICT (hall_id, service_code, slot) DO UPDATE SET waiting = q.waiting + 1;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER tickets_tally AFTER INSERT OR UPDATE OF state, service_code ON tickets
    FOR EACH ROW EXECUTE FUNCTION tickets_tally();

-- Tickets already there when this migration runs.
INSERT INTO queue_tallies (hall_id, service_code, slot, waiting)
SELECT hall_id, service_code, 0, count(*) FROM tickets WHERE state = 'waiting'
GROUP BY hall_id, service_code;
INSERT INTO service_days (hall_id, service_code, business_day, issued)
SELECT hall_id, service_code, business_day, count(*) FROM tickets
GROUP BY hall_id, service_code, business_day;
