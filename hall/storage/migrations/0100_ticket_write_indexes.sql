-- Fewer index entries per ticket write (issue 9, CPU per operation).
--
-- A ticket update is never a HOT update (`state` is in the predicates of the partial
-- indexes, `counter_number` in tickets_one_active_per_counter), so every write of a ticket
-- (issue, call, start, finish) adds an entry to each index whose predicate the new row
-- meets, and every index without a predicate gets one on every write.
--
-- tickets_day (hall_id, business_day) is a prefix of tickets_number (hall_id, business_day,
-- display_number): every read by hall and business day (reports, the dashboard, the config
-- store's open tickets) can use tickets_number instead.
DROP INDEX tickets_day;

-- Only tickets issued with an idempotency key need to be unique on it; the others (most
-- tickets) no longer get an entry, at issue or at any later write. The name still says
-- "idempotency" (hall.services.queue tells a reused key from other unique violations by it).
ALTER TABLE tickets DROP CONSTRAINT tickets_hall_id_idempotency_key_key;
CREATE UNIQUE INDEX tickets_idempotency_key ON tickets (hall_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
