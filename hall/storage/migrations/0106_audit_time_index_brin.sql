-- The audit log's time index as a BRIN index (issue 9, PostgreSQL's work per operation;
-- counted with `bench/pg_per_op.py --wal`).
--
-- Every audited request (a staff member's issue, call, start, finish, ...) appends a row to
-- audit_log, and each of its three btree indexes took an entry: a WAL record and a page
-- write each. No query of the application reads the log by time (the audit page is paged by
-- id, and by actor through audit_log_actor); the time index is there for an auditor's reads
-- of a period. Rows are appended in time order, so a BRIN index serves such a read (the
-- block ranges of the period), and an insert into a block range that is not summarized
-- writes nothing to it: VACUUM summarizes only full ranges, and the one being filled is left
-- unsummarized here (CREATE INDEX summarizes it too, and every row appended to it would then
-- widen its summary, a WAL record each). A read scans an unsummarized range whole: at most
-- 128 pages.
DROP INDEX audit_log_at;
CREATE INDEX audit_log_at ON audit_log USING brin (at);
SELECT brin_desummarize_range(
    'audit_log_at',
    pg_relation_size('audit_log') / current_setting('block_size')::bigint / 128 * 128);
