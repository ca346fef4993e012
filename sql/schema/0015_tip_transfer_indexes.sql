-- 0015: the tipper, tippee and payday_id indexes of payday.transfers become each
-- partition's own instead of the partitioned table's (issue 4; the figures are in
-- bench/README.md, seventeenth round).
--
-- A partitioned index must be on every partition before the partition is attached, so
-- pay_tips() built all four of a payday's indexes inside its transaction, one after the
-- other, with the second core idle. Now the primary key (which the references from
-- payday.reversals need) stays the partitioned table's and is built before the attach as
-- before; the other three are built after it by payday.index_tip_transfers(): by the
-- runner on a connection of its own while the payout runs, or by payday.finish(), which
-- always calls it before its checks. Queries through payday.transfers use each
-- partition's indexes as before; until they are built, a payday's partition is read in
-- full by a search by tipper, tippee or payday.
--
-- The partitioned indexes cannot give their partitions' indexes up (dropping one drops
-- them all): every partition's three are built again here, under the names they had.
-- On a long history that is the time of building them (about 2.5 s per million
-- transfers and index on a 2-core machine).

DROP INDEX payday.transfers_tipper_idx;
DROP INDEX payday.transfers_tippee_idx;
DROP INDEX payday.transfers_payday_idx;

-- Then every partition's own three: sql/schema/0015_tip_transfer_indexes_each.sql.
