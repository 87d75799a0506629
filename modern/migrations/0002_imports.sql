-- Every import the migration target applied, in the order it applied
-- them: an import answered from its Idempotency-Key is not here twice.
CREATE TABLE import_log (
    seq bigserial PRIMARY KEY,
    idempotency_key text NOT NULL,
    patient_id bigint NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX import_log_key ON import_log (idempotency_key);
