-- Alarms of an edge bridge itself (not of one device): its local outbox cannot store events
-- (disk full, I/O error) and, later, stores them again. Such rows carry the bridge's device id
-- in `bus` and address 0.
ALTER TABLE device_alarms DROP CONSTRAINT device_alarms_kind_check;
ALTER TABLE device_alarms ADD CONSTRAINT device_alarms_kind_check
    CHECK (kind IN ('offline', 'online', 'uid_changed', 'duplicate_uid', 'rebooted',
                    'event_overflow', 'fault', 'outbox_full', 'outbox_ok'));
