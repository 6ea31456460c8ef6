-- kiosk: the print-job trigger (0030) fires only for tickets issued at a kiosk. Tickets
-- issued by staff, the web or an appointment check-in without a kiosk skipped the job
-- inside the function anyway; the WHEN clause spares them the PL/pgSQL call at every insert.
DROP TRIGGER tickets_kiosk_print_job ON tickets;
CREATE TRIGGER tickets_kiosk_print_job AFTER INSERT ON tickets
    FOR EACH ROW WHEN (NEW.kiosk IS NOT NULL)
    EXECUTE FUNCTION kiosk_print_job_for_ticket();
