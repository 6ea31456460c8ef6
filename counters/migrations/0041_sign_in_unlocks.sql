-- An admin releasing a hardware sign-in lockout (too many wrong PINs, cards or badges): wrong
-- credentials before the release no longer count. A typed-login lock belongs to a job number;
-- a card or badge lock (no job number known) to a counter. Who released it and when is kept
-- here as well as in the audit log.
CREATE TABLE sign_in_unlocks (
    id              bigserial PRIMARY KEY,
    hall_id         text NOT NULL,
    job_no          text,
    counter_number  integer,
    at              timestamptz NOT NULL,
    by_actor        text NOT NULL,
    CHECK ((job_no IS NULL) <> (counter_number IS NULL))
);
CREATE INDEX sign_in_unlocks_job ON sign_in_unlocks (job_no, at) WHERE job_no IS NOT NULL;
CREATE INDEX sign_in_unlocks_counter ON sign_in_unlocks (hall_id, counter_number, at)
    WHERE counter_number IS NOT NULL;
-- The lock list reads a hall's recent wrong credentials.
CREATE INDEX device_sign_ins_wrong ON device_sign_ins (hall_id, at)
    WHERE reason = 'wrong_credential';
