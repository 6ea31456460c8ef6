-- Repeated wrong passwords lock an account for a while (等保 2.0 asks for 登录失败处理: limit
-- illegal login attempts). The count restarts after a successful login, after the lock runs
-- out, and when an administrator sets a new password.
ALTER TABLE staff_credentials
    ADD COLUMN failed_logins integer NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
    ADD COLUMN locked_until  timestamptz;
