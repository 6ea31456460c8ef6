-- kiosk: the per-person daily limit of a service. A ticket taken with an ID number has one
-- row here, written in the ticket's transaction; the number itself is never stored, only its
-- keyed hash (HMAC-SHA256 with the deployment's secret key, hall.security.keys).

CREATE TABLE kiosk_id_tickets (
    ticket_id     bigint PRIMARY KEY REFERENCES tickets (id) ON DELETE CASCADE,
    hall_id       text NOT NULL REFERENCES halls (id),
    service_code  text NOT NULL,
    business_day  date NOT NULL,
    id_hash       text NOT NULL CHECK (id_hash ~ '^[0-9a-f]{64}$')
);
CREATE INDEX kiosk_id_tickets_person
    ON kiosk_id_tickets (hall_id, service_code, business_day, id_hash);
