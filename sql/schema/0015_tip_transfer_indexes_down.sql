-- Back to 0014: the tipper, tippee and payday_id indexes are the partitioned table's again.
-- A partition that lacks one (an open payday whose indexes were not built yet) gets it
-- under the name it would have had; then each partitioned index takes every partition's
-- matching index as its own, without building it again.
-- (sql/schema/0015_tip_transfer_indexes_each.sql runs first.)

CREATE INDEX transfers_tipper_idx ON payday.transfers (tipper);
CREATE INDEX transfers_tippee_idx ON payday.transfers (tippee);
CREATE INDEX transfers_payday_idx ON payday.transfers USING brin (payday_id) WITH (autosummarize = on);
