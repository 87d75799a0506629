-- Mismatch samples of earlier releases kept the request's query names
-- (?mrn7730019=1, ?987-65-4329=x) and the keys of its JSON body in their
-- target and curl commands as sent: a name that is data, or that is the
-- request's own path parameter ({"MRN-7Q4Z-TEST": …} on
-- /patients/MRN-7Q4Z-TEST), was kept in clear. This release writes them
-- as placeholders (phi.Hasher.Target, shadow's curlCommand), but a stored
-- sample cannot be rewritten so: the request is not kept. So they go; a
-- route's next mismatches are sampled again. Keep in step with
-- ../postgres/0140_sample_query_names.sql.
DELETE FROM strangler_samples;
