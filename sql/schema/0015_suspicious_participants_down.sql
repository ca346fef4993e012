-- Downgrade of schema 0015 (migrations/versions/0015_suspicious_participants.py): the
-- migration then runs sql/schema/0013_due_credits_candidates.sql again, whose
-- payday.due_credits checks each tippee in the primary key. The index goes too: with it,
-- that view's NOT EXISTS may be planned as a merge anti-join reading the whole index for
-- every candidate.

DROP INDEX payday.participants_suspicious_idx;
