"""Ticket issuing: kiosk page, ticket layout, ESC/POS printer driver (roadmap item 1)."""
