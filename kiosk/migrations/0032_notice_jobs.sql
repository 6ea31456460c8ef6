-- kiosk: one-time notice slips (一次性告知单) are print jobs too. A notice belongs to no
-- ticket: it names the matter (实施编码) it lists. A notice that cannot print at once is
-- cancelled rather than held (the kiosk shows it on screen; nobody waits for it later).

ALTER TABLE kiosk_print_jobs ALTER COLUMN ticket_id DROP NOT NULL;
ALTER TABLE kiosk_print_jobs ADD COLUMN matter text;
ALTER TABLE kiosk_print_jobs DROP CONSTRAINT kiosk_print_jobs_kind_check;
ALTER TABLE kiosk_print_jobs ADD CONSTRAINT kiosk_print_jobs_kind_check
    CHECK (kind IN ('ticket', 'reprint', 'notice'));
ALTER TABLE kiosk_print_jobs ADD CONSTRAINT kiosk_print_jobs_notice_has_matter
    CHECK ((kind = 'notice') = (ticket_id IS NULL) AND (kind = 'notice') = (matter IS NOT NULL));
