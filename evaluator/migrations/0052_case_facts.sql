-- One row per case with the facts the managers' case rates are built from (domain.md §2.4):
--   办结率     = count(completed) / count(*)
--   按时办结率 = count(on_time) / count(completed)   (the denominator is completed cases)
--   现场办结率 = count(on_the_spot) / count(*)       (completed during the visit at the window)
-- business_day is the hall-local day the case was accepted (cases.accepted_on);
-- completed_on is the hall-local day of its first move to 办结 (from case_events).
-- The manager slice reads hall_id, business_day, on_time and on_the_spot by these names.
CREATE VIEW evaluator_case_facts AS
SELECT c.hall_id,
       c.accepted_on AS business_day,
       c.counter_number AS counter_id,
       c.clerk AS job_no,
       c.service_code,
       c.matter_code,
       c.case_type,
       c.promised_days,
       c.due_on,
       c.status,
       done.completed_on,
       done.completed_on IS NOT NULL AS completed,
       COALESCE(done.completed_on <= c.due_on, false) AS on_time,
       COALESCE(c.case_type = 'immediate' AND done.completed_on = c.accepted_on, false)
           AS on_the_spot,
       c.id AS case_id,
       c.ticket_id
FROM cases c
JOIN halls h ON h.id = c.hall_id
LEFT JOIN LATERAL (
    SELECT min(e.at AT TIME ZONE h.tz)::date AS completed_on
    FROM case_events e
    WHERE e.case_id = c.id AND e.to_status = 'completed'
) done ON true;
