-- The priority tickets waiting for a service are read from an index of their own (issue 9,
-- CPU per operation).
--
-- Issuing (and the ticket page) counts a service's waiting priority tickets, up to 100
-- (repo._priority_waiting_sql). The statement is prepared once per connection with a
-- generic plan, and on a `tickets` table without statistics (a new hall, a new database:
-- autovacuum analyzes at most once a minute) PostgreSQL takes `priority_class IS NOT NULL`
-- to hold for nearly every row and read the count from tickets_waiting, filtering every
-- waiting ticket of the service: one heap fetch per waiting ticket, at every issue, so
-- issuing cost grew with the queue (perf on the backends in bench/pg_per_op.py: 5 % of
-- their CPU in that scan at 3,000 waiting). This index holds only waiting priority
-- tickets without a target counter, exactly the rows counted: whatever the statistics, no
-- plan can read fewer rows, and it costs a write only for a priority ticket.
CREATE INDEX tickets_priority_waiting ON tickets (hall_id, service_code, queue_key, id)
    WHERE state = 'waiting' AND target_counter IS NULL AND priority_class IS NOT NULL;
