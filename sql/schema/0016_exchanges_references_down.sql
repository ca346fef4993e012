-- Back to 0015: the foreign keys of payday.exchanges again (validated against every row),
-- in place of 0016's triggers.
DROP TRIGGER participants_no_truncate ON payday.participants;
DROP FUNCTION payday.participants_no_truncate();
DROP TRIGGER paydays_exchanges_referenced ON payday.paydays;
DROP TRIGGER participants_exchanges_referenced ON payday.participants;
DROP TRIGGER participants_rename_exchanges ON payday.participants;
DROP TRIGGER exchanges_references_update ON payday.exchanges;
DROP TRIGGER exchanges_references_insert ON payday.exchanges;
DROP FUNCTION payday.exchanges_still_referenced();
DROP FUNCTION payday.participants_rename_exchanges();
DROP FUNCTION payday.exchanges_references_exist();
ALTER TABLE payday.exchanges
    ADD CONSTRAINT exchanges_participant_fkey FOREIGN KEY (participant)
        REFERENCES payday.participants (username) ON UPDATE CASCADE,
    ADD CONSTRAINT exchanges_payday_id_fkey FOREIGN KEY (payday_id) REFERENCES payday.paydays (id);
