-- The wait each ticket was promised when it was issued, kept to measure the estimate against
-- the wait that followed (first_called_at - issued_at): ours with its range, and the naive
-- one (people ahead × mean service time ÷ open counters) as the baseline.
-- Written after the ticket, with a later issue statement of the same server (no extra round
-- trip on the hot path); NULL for tickets issued while no open counter served the queue.
ALTER TABLE tickets
    ADD COLUMN estimate_s real,
    ADD COLUMN estimate_low_s real,
    ADD COLUMN estimate_high_s real,
    ADD COLUMN naive_estimate_s real;
