-- Learned noise fields and mismatch samples of earlier releases kept
-- object keys that are data in their field paths (and samples in their
-- values): visits.MRN-7Q4Z-TEST.seen_at. This release writes them as {*}
-- (shadow.PublicPath), but a stored path cannot be rewritten so: a key
-- that reads like a field name (MRN-7Q4Z-TEST) is data when the request
-- carried it, and the request is not kept. So they go; noise is learned
-- again within a few double-primary comparisons per field. Keep in step
-- with ../sqlite/0100_public_paths.sql.
DELETE FROM strangler_noise;
DELETE FROM strangler_samples;
