-- A device event's key in one round trip (docs/protocol.md §8.3, §15.4): when the device row
-- does not carry the event's boot_id (a new boot) or the event is a boot's first, keys of that
-- boot_id older than the given age are forgotten (left by a boot 65535 boots ago); then the key
-- is inserted with the outcome the caller expects. Returns false when the key was stored
-- before (a duplicate). A concurrent insert of the same key waits for the first transaction:
-- if it commits, this one is a duplicate; if it rolls back, this one inserts.
CREATE FUNCTION claim_device_event(p_bus text, p_address integer, p_uid text, p_boot_id integer,
                                   p_evt_seq integer, p_hall_id text, p_evt_type integer,
                                   p_outcome text, p_now timestamptz, p_stale_after interval)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF p_evt_seq = 1 OR NOT EXISTS (
        SELECT 1 FROM devices
        WHERE bus = p_bus AND address = p_address AND boot_id = p_boot_id
    ) THEN
        DELETE FROM device_events_seen
        WHERE device_uid = p_uid AND boot_id = p_boot_id AND processed_at < p_now - p_stale_after;
    END IF;
    INSERT INTO device_events_seen (device_uid, boot_id, evt_seq, hall_id, evt_type, outcome,
                                    processed_at)
    VALUES (p_uid, p_boot_id, p_evt_seq, p_hall_id, p_evt_type, p_outcome, p_now)
    ON CONFLICT (device_uid, boot_id, evt_seq) DO NOTHING;
    RETURN FOUND;
END
$$;
