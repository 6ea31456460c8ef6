-- The evaluator's open alarms as the manager dashboard reads every slice's alarms: a view
-- named alarms_<slice> (hall_id, key, kind, severity, message, since), holding only the
-- conditions that hold now. A dead letter is critical (a record will not reach the upstream
-- platform without a manager); an overdue 差评 is a warning.
CREATE VIEW alarms_evaluator AS
SELECT hall_id,
       kind || ':' || ref_id AS key,
       kind,
       CASE kind WHEN 'upstream_dead_letter' THEN 'critical' ELSE 'warning' END AS severity,
       message,
       raised_at AS since
FROM evaluator_alarms
WHERE cleared_at IS NULL;
