-- Pairing kinds are declared by the features (hall.web.pairing_kinds): a web rating pad pairs as
-- "pad", not as a display. The kind of a pairing and of a device token is any short lower-case
-- name; the application checks it against the installed kinds.
ALTER TABLE device_pairings DROP CONSTRAINT device_pairings_kind_check;
ALTER TABLE device_pairings ADD CONSTRAINT device_pairings_kind_check
    CHECK (kind ~ '^[a-z][a-z0-9_]{0,15}$');
ALTER TABLE device_tokens DROP CONSTRAINT device_tokens_kind_check;
ALTER TABLE device_tokens ADD CONSTRAINT device_tokens_kind_check
    CHECK (kind ~ '^[a-z][a-z0-9_]{0,15}$');
