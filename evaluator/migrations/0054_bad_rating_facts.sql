-- One row per 差评 follow-up task with the facts the managers' 差评 figures are built from
-- (domain.md §2.4 and the bad-rating loop):
--   差评整改率 = count(rectified) / count(*)
--   回访率     = count(return_visited) / count(*)
--   按时办结   = count(closed_on_time) / count(*)   (closed by its due day, hall-local)
-- A 差评 whose appeal (申诉复核) was upheld leaves the statistics: readers skip
-- appeal_upheld rows. business_day is the hall-local day the task was opened.
-- The manager slice reads these columns by name.
CREATE VIEW evaluator_bad_rating_facts AS
SELECT t.hall_id,
       (t.opened_at AT TIME ZONE h.tz)::date AS business_day,
       t.counter_number AS counter_id,
       t.clerk AS job_no,
       t.status,
       t.due_on,
       t.rectified_at IS NOT NULL AS rectified,
       t.return_visit_at IS NOT NULL AS return_visited,
       COALESCE(t.closed_at IS NOT NULL
                AND (t.closed_at AT TIME ZONE h.tz)::date <= t.due_on, false) AS closed_on_time,
       COALESCE(t.appeal_outcome = 'upheld', false) AS appeal_upheld,
       t.id AS task_id,
       t.rating_id
FROM bad_rating_tasks t
JOIN halls h ON h.id = t.hall_id;
