-- A journaled write keeps the method the backends read it as
-- (domain.Intent.StandsFor): a POST with X-HTTP-Method-Override or
-- _method stands for a PUT, PATCH or DELETE, and is ordered as one
-- after a restart and when an operator retries it. Rows of earlier
-- releases: a write other than a POST stands for its method; a POST's is
-- read from its kept request by the step after this migration
-- (fillStandsFor), and stays NULL, taken for no create, when that was
-- erased (settled writes) or cannot be read. Keep in step with
-- ../postgres/0160_journal_stands_for.sql.
ALTER TABLE strangler_repairs ADD COLUMN stands_for TEXT;
UPDATE strangler_repairs SET stands_for = method WHERE method <> 'POST';
