-- The wait each ticket was promised when it was issued, kept to measure the estimate against
-- the wait that followed (tickets.first_called_at - issued_at): ours with its range, and the
-- naive one (people ahead × mean service time ÷ open counters) as the baseline. NULL naive:
-- no open counter served the queue (no row at all when neither estimator could tell).
--
-- Written after the ticket by a later issue statement of the same server (no extra round
-- trip on the hot path). A table of its own, not columns of tickets: writing it never locks
-- a ticket row, which call-next would then pass over. No foreign key: a ticket of a batch
-- that rolled back leaves at most an orphan row, never a failed issue.
CREATE TABLE ticket_estimates (
    ticket_id   bigint PRIMARY KEY,
    estimate_s  real NOT NULL,
    low_s       real NOT NULL,
    high_s      real NOT NULL,
    naive_s     real
);
