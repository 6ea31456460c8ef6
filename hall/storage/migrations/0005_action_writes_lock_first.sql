-- Counter action statements now lock the counter (at the version read) and then the ticket
-- (in the state read) before writing either, and write only when they hold both, so a lost
-- race writes nothing and needs no rollback. check_action_write() of migration 0003 raised
-- to roll such a statement back; each raise put an ERROR and the whole statement in the
-- server log, hundreds of lines when many windows press 叫号 at once. It is unused now.
DROP FUNCTION check_action_write(bigint, bigint);
