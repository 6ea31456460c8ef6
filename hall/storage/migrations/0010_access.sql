-- Access control: staff passwords, sessions, device tokens and the append-only audit log.
-- Secrets are never stored: passwords as scrypt hashes (parameters inside the hash string),
-- session and device tokens as SHA-256 of the random token.

CREATE TABLE staff_credentials (
    job_no         text PRIMARY KEY REFERENCES staff (job_no) ON DELETE CASCADE,
    password_hash  text NOT NULL,
    -- 'cli': the staff row was created by `hall user add`, not by the hall config, so a config
    -- reload (which deactivates staff it does not list) must not lock the account out.
    origin         text NOT NULL DEFAULT 'config' CHECK (origin IN ('config', 'cli')),
    disabled_at    timestamptz,
    changed_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sessions (
    id            bigserial PRIMARY KEY,
    -- The cookie and the bearer session of one login share login_id; logout ends both.
    login_id      text NOT NULL,
    job_no        text NOT NULL REFERENCES staff (job_no) ON DELETE CASCADE,
    kind          text NOT NULL CHECK (kind IN ('cookie', 'bearer')),
    token_hash    bytea NOT NULL UNIQUE,
    -- Only cookie sessions need one; it is useless without the HttpOnly cookie.
    csrf_token    text,
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    revoked_at    timestamptz,
    revoked_by    text,
    user_agent    text,
    ip            text,
    CHECK ((kind = 'cookie') = (csrf_token IS NOT NULL))
);
CREATE INDEX sessions_login ON sessions (login_id);
CREATE INDEX sessions_live ON sessions (job_no) WHERE revoked_at IS NULL;

CREATE TABLE device_tokens (
    id            bigserial PRIMARY KEY,
    kind          text NOT NULL CHECK (kind IN ('kiosk', 'display', 'bridge')),
    hall_id       text NOT NULL REFERENCES halls (id),
    device_id     text NOT NULL,
    name          text NOT NULL,
    token_hash    bytea NOT NULL UNIQUE,
    created_at    timestamptz NOT NULL,
    created_by    text NOT NULL,
    last_used_at  timestamptz,
    revoked_at    timestamptz,
    revoked_by    text
);
CREATE INDEX device_tokens_device ON device_tokens (hall_id, kind, device_id);

CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL,
    actor       text NOT NULL,
    actor_kind  text NOT NULL,
    session_id  bigint,
    route       text NOT NULL,
    method      text NOT NULL,
    path        text NOT NULL,
    params      jsonb NOT NULL DEFAULT '{}',
    remote      text,
    user_agent  text,
    status      integer NOT NULL
);
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
