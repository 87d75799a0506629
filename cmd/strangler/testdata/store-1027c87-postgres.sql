-- The PostgreSQL state store of strangler 1027c87 (store migrations up
-- to 0071; main has ten more), as `pg_dump --inserts --no-owner
-- --no-privileges` wrote it, less its session settings, psql commands
-- and schema name (public.), so that it loads into any schema; for
-- TestAnEarlierReleasesStoreServedAfterTheUpgrade (upgrade_test.go).
-- Synthetic data only. How it was made: `CGO_ENABLED=0 go build` of
-- 1027c87, served with the test's routes, store_encryption key 0x11 x 32,
-- tokens alice and bob, modern answering 503 to writes, and then:
--   PUT /items/7 seven-1, seven-2; PUT /items/8 eight-1; PUT /items/7
--   seven-3; POST /items created-1; POST /items created-2 with
--   Idempotency-Key fixture-key-1 (all pending: modern refused them);
--   GET /items twice (two shadow samples); alice flips get-item to
--   modern 30%; alice starts a ramp of put-note (1, 5, 25% every 7d) and
--   bob approves it (step 1 taken); alice asks to flip list-items to
--   modern (change request 2, pending); PUT /items/9 slow, held by legacy,
--   and the facade killed (SIGKILL) while it waited: journaled as sent.
-- Edited after the dump, so that the test does not depend on the day it
-- runs: change request 2's expiry, the ramp's next step and the
-- idempotency key's time moved to 2099 (none of them is in the audit
-- chain's hashes).

CREATE TABLE strangler_audit (
    id bigint NOT NULL,
    at timestamp with time zone NOT NULL,
    actor text NOT NULL,
    action text NOT NULL,
    route text NOT NULL,
    from_mode text NOT NULL,
    to_mode text NOT NULL,
    from_percent double precision,
    to_percent double precision,
    reason text NOT NULL,
    forced boolean NOT NULL,
    detail text NOT NULL,
    prev_hash text,
    hash text
);

CREATE TABLE strangler_audit_head (
    one smallint NOT NULL,
    last_id bigint NOT NULL,
    hash text NOT NULL,
    pre_chain_last_id bigint NOT NULL,
    started_at timestamp with time zone NOT NULL,
    CONSTRAINT strangler_audit_head_one_check CHECK ((one = 1))
);

ALTER TABLE strangler_audit ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME strangler_audit_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE strangler_changes (
    id bigint NOT NULL,
    route text NOT NULL,
    kind text NOT NULL,
    mode text NOT NULL,
    percent double precision,
    forced boolean NOT NULL,
    ramp_steps text NOT NULL,
    ramp_every_ns bigint NOT NULL,
    from_mode text NOT NULL,
    from_percent double precision,
    base_version bigint NOT NULL,
    requester text NOT NULL,
    reason text NOT NULL,
    needed integer NOT NULL,
    approvers text NOT NULL,
    state text NOT NULL,
    decided_by text NOT NULL,
    decision text NOT NULL,
    decided_at timestamp with time zone,
    created_at timestamp with time zone NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    version bigint NOT NULL,
    CONSTRAINT strangler_changes_kind_check CHECK ((kind = ANY (ARRAY['flip'::text, 'clear'::text, 'ramp'::text]))),
    CONSTRAINT strangler_changes_needed_check CHECK ((needed > 0)),
    CONSTRAINT strangler_changes_state_check CHECK ((state = ANY (ARRAY['pending'::text, 'applied'::text, 'rejected'::text, 'expired'::text, 'stale'::text]))),
    CONSTRAINT strangler_changes_version_check CHECK ((version > 0))
);

ALTER TABLE strangler_changes ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME strangler_changes_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE strangler_idempotency_keys (
    key text NOT NULL,
    fingerprint text NOT NULL,
    intent_id text NOT NULL,
    at timestamp with time zone NOT NULL
);

CREATE TABLE strangler_leases (
    name text NOT NULL,
    owner text NOT NULL,
    until timestamp with time zone NOT NULL
);

CREATE TABLE strangler_legacy_clients (
    route text NOT NULL,
    hour timestamp with time zone NOT NULL,
    client text NOT NULL,
    requests bigint NOT NULL
);

CREATE TABLE strangler_noise (
    route text NOT NULL,
    path text NOT NULL,
    added_at timestamp with time zone NOT NULL
);

CREATE TABLE strangler_overrides (
    route text NOT NULL,
    mode text NOT NULL,
    percent double precision,
    version bigint NOT NULL,
    actor text NOT NULL,
    reason text NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    CONSTRAINT strangler_overrides_version_check CHECK ((version > 0))
);

CREATE TABLE strangler_ramps (
    route text NOT NULL,
    mode text NOT NULL,
    steps text NOT NULL,
    every_ns bigint NOT NULL,
    taken integer NOT NULL,
    state text NOT NULL,
    next_at timestamp with time zone NOT NULL,
    waiting text NOT NULL,
    waiting_since timestamp with time zone,
    note text NOT NULL,
    at_mode text NOT NULL,
    at_percent double precision,
    at_version bigint NOT NULL,
    actor text NOT NULL,
    reason text NOT NULL,
    approved_by text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    version bigint NOT NULL,
    CONSTRAINT strangler_ramps_every_ns_check CHECK ((every_ns > 0)),
    CONSTRAINT strangler_ramps_state_check CHECK ((state = ANY (ARRAY['running'::text, 'paused'::text, 'held'::text, 'done'::text, 'cancelled'::text]))),
    CONSTRAINT strangler_ramps_version_check CHECK ((version > 0))
);

CREATE TABLE strangler_repair_keys (
    entity text NOT NULL,
    key text NOT NULL,
    added_at timestamp with time zone NOT NULL,
    sealed_key text DEFAULT ''::text NOT NULL
);

CREATE SEQUENCE strangler_repair_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

CREATE TABLE strangler_repairs (
    id text NOT NULL,
    route text NOT NULL,
    resource text NOT NULL,
    method text NOT NULL,
    target text NOT NULL,
    header bytea NOT NULL,
    body bytea NOT NULL,
    primary_side text NOT NULL,
    state text NOT NULL,
    seq bigint,
    status integer,
    location text DEFAULT ''::text NOT NULL,
    primary_id text DEFAULT ''::text NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    last_error text DEFAULT ''::text NOT NULL,
    next_attempt_at timestamp with time zone,
    lease_owner text,
    lease_until timestamp with time zone,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    resource_view text DEFAULT ''::text NOT NULL,
    sealed boolean DEFAULT false NOT NULL,
    CONSTRAINT strangler_repairs_state_check CHECK ((state = ANY (ARRAY['sent'::text, 'pending'::text, 'skipped'::text, 'unknown'::text, 'done'::text, 'dead'::text, 'discarded'::text])))
);

CREATE TABLE strangler_route_hours (
    route text NOT NULL,
    hour timestamp with time zone NOT NULL,
    requests bigint NOT NULL,
    modern bigint NOT NULL,
    fallbacks bigint NOT NULL,
    shadow_matches bigint NOT NULL,
    shadow_mismatches bigint NOT NULL,
    last_fallback_at timestamp with time zone,
    confirmed_missing bigint DEFAULT 0 NOT NULL
);

CREATE TABLE strangler_samples (
    id bigint NOT NULL,
    route text NOT NULL,
    at timestamp with time zone NOT NULL,
    sample jsonb NOT NULL,
    sealed boolean DEFAULT false NOT NULL
);

ALTER TABLE strangler_samples ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME strangler_samples_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE strangler_schema_migrations (
    version integer NOT NULL,
    name text NOT NULL,
    applied_at timestamp with time zone NOT NULL
);

CREATE TABLE strangler_schemas (
    route text NOT NULL,
    method text NOT NULL,
    status integer NOT NULL,
    doc jsonb NOT NULL,
    updated_at timestamp with time zone NOT NULL
);

CREATE TABLE strangler_secrets (
    name text NOT NULL,
    value bytea NOT NULL,
    sealed boolean NOT NULL,
    created_at timestamp with time zone NOT NULL
);

CREATE TABLE strangler_sessions (
    id text NOT NULL,
    actor text NOT NULL,
    binding text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    last_seen timestamp with time zone NOT NULL
);

INSERT INTO strangler_audit OVERRIDING SYSTEM VALUE VALUES (1, '2026-12-06 15:17:36.983892+00', 'alice', 'flip', 'get-item', 'legacy', 'modern', NULL, 30, 'fixture override', false, '', '0000000000000000000000000000000000000000000000000000000000000000', '4a3d5f85b6874d82e79a94883d6371ea20c853a4b269b3f491a9c4598a324830');
INSERT INTO strangler_audit OVERRIDING SYSTEM VALUE VALUES (2, '2026-12-06 15:17:37.025629+00', 'alice', 'change_request', 'put-note', 'legacy', 'modern', NULL, 25, 'fixture ramp', false, 'change request 1 (ramp to modern at 1%, 5%, 25% every 7d) waits for 1 approval within 24 h', '4a3d5f85b6874d82e79a94883d6371ea20c853a4b269b3f491a9c4598a324830', '1e7fe0e2cb8eef932e3c1fd9b394d71bce27e5f4fcb9f2422905e5e6957d385c');
INSERT INTO strangler_audit OVERRIDING SYSTEM VALUE VALUES (3, '2026-12-06 15:17:37.06954+00', 'bob', 'change_approve', 'put-note', 'legacy', 'modern', NULL, 25, 'fixture approval', false, 'change request 1 (alice''s ramp to modern at 1%, 5%, 25% every 7d): approval 1 of 1', '1e7fe0e2cb8eef932e3c1fd9b394d71bce27e5f4fcb9f2422905e5e6957d385c', 'e4da67dbe9377e45ca731aadfa0428361e9b3cb149771077487c9fefc5c385f5');
INSERT INTO strangler_audit OVERRIDING SYSTEM VALUE VALUES (4, '2026-12-06 15:17:37.069566+00', 'alice', 'ramp_start', 'put-note', 'legacy', 'modern', NULL, 25, 'fixture ramp', false, 'ramp to modern at 1%, 5%, 25% every 7d; the first step now; approved by bob', 'e4da67dbe9377e45ca731aadfa0428361e9b3cb149771077487c9fefc5c385f5', '064771ee8aa62e1e33b425081e165bd762b5f70b09fb4986f38b92fdb83dba87');
INSERT INTO strangler_audit OVERRIDING SYSTEM VALUE VALUES (5, '2026-12-06 15:17:37.237073+00', 'ramp', 'flip', 'put-note', 'legacy', 'modern', NULL, 1, 'fixture ramp', false, 'ramp step 1 of 3 (to modern at 1%, 5%, 25% every 7d), started by alice, approved by bob', '064771ee8aa62e1e33b425081e165bd762b5f70b09fb4986f38b92fdb83dba87', 'e27fb31790d64b21859cb04c88c8b95b4aae4654a959a956845e594ac7c4859a');
INSERT INTO strangler_audit OVERRIDING SYSTEM VALUE VALUES (6, '2026-12-06 15:17:39.183649+00', 'alice', 'change_request', 'list-items', 'shadow', 'modern', NULL, 100, 'fixture change request', false, 'change request 2 (shadow → modern) waits for 1 approval within 24 h', 'e27fb31790d64b21859cb04c88c8b95b4aae4654a959a956845e594ac7c4859a', 'c789a089448383ca421e5a0e546664db06c88b85c30f3f243ff59c92f2581a11');

INSERT INTO strangler_audit_head VALUES (1, 6, 'c789a089448383ca421e5a0e546664db06c88b85c30f3f243ff59c92f2581a11', 0, '2026-12-06 15:17:35.752579+00');

INSERT INTO strangler_changes OVERRIDING SYSTEM VALUE VALUES (1, 'put-note', 'ramp', 'modern', 25, false, '[1,5,25]', 604800000000000, 'legacy', NULL, 0, 'alice', 'fixture ramp', 1, '["bob"]', 'applied', 'bob', '', '2026-12-06 15:17:37.06954+00', '2026-12-06 15:17:37.025629+00', '2026-12-07 15:17:37.025629+00', 2);
INSERT INTO strangler_changes OVERRIDING SYSTEM VALUE VALUES (2, 'list-items', 'flip', 'modern', 100, false, '', 0, 'shadow', NULL, 0, 'alice', 'fixture change request', 1, '[]', 'pending', '', '', NULL, '2026-12-06 15:17:39.183649+00', '2099-12-07 15:17:39.183649+00', 1);

INSERT INTO strangler_idempotency_keys VALUES ('h:2ad135f95b32cc960cf458c1056ae897', 'h:da921dc642b258d7799d5bd7988af02c', 'bb657fe8-0c17-4a46-ba43-014ccd248329', '2099-12-06 15:17:36.842617+00');

INSERT INTO strangler_leases VALUES ('ramps', 'vm:6381:aeec07c0', '2026-12-06 15:17:52.233499+00');

INSERT INTO strangler_overrides VALUES ('get-item', 'modern', 30, 1, 'alice', 'fixture override', '2026-12-06 15:17:36.983892+00');
INSERT INTO strangler_overrides VALUES ('put-note', 'modern', 1, 1, 'ramp', 'fixture ramp', '2026-12-06 15:17:37.237074+00');

INSERT INTO strangler_ramps VALUES ('put-note', 'modern', '[1,5,25]', 604800000000000, 1, 'running', '2099-12-13 15:17:37.233499+00', '', NULL, '', 'modern', 1, 1, 'alice', 'fixture ramp', 'bob', '2026-12-06 15:17:37.069566+00', '2026-12-06 15:17:37.233499+00', 2);

INSERT INTO strangler_repairs VALUES ('4c226dd1-45df-4fdb-b0b1-1b89e4e3cd56', 'put-item', 'h:9ec9153e692b4296cc636e31e7a26e4a', 'PUT', 'AbhgWxJXVyAvXckLjQheKsuowb1caV5FIstJGESCBPHAPnOk9xKehVjK8nfp', '\x01b8605b125757202f2982a34746e4ace39ada4827e38b259a239615a9e7259d99546b6f1c19a249f9be0c7f5400cfaef72f4a894bce23df8949432353111a29679b989f150d9fe05ffc0cafd7368c68a33f113ce86c383d888d06a2dd7ac46d6e6335d22080cf3a68367038209c02e6d58746ec9da57ed6dd9c58ad6d51300794d2e31a4c9820865110db8802e7da9acd777c39d4fed5baa24814057414a9510fade37a9a002dcb9e40bad83d8802188bdc481d82ee2a861fa3cfce7cc3d846dea6f6638c5a575247652e5777f31ae607f56398f92cf50c011cb72cd1767b6670911dad98f3027de7b772a55714e850924b227c432f49bc7334164e57cb75b731cb52b8aeb4ed323215ac', '\x01b8605b125757202fcddcdff4b6bbb3b01f7c4886feff8262668d6987b10b9265b5ddf3a8cc96c9a15e087e9718ff5310e443f1', 'legacy', 'pending', 2, 201, '', '', 0, '', '2026-12-06 15:17:36.573013+00', NULL, NULL, '2026-12-06 15:17:36.508977+00', '2026-12-06 15:17:36.573013+00', '/items/{id:h:f3570d7be324bd06}', true);
INSERT INTO strangler_repairs VALUES ('142895aa-1965-41b4-87e4-2e164f9b75c1', 'put-item', 'h:9ec9153e692b4296cc636e31e7a26e4a', 'PUT', 'AbhgWxJXVyAvYrXwaFnDIj6Yx6OKC1BMxmqBF9CrtmGjeHLpWsqtohjKN8dh', '\x01b8605b125757202f95f2fbdbcce629087a40d7a264abba29732f20f75b7da5f325d9bf13dcd0d0262cd2ff98b0eee019eac3361505540e322fa4d910b5f1adb1eb34b4e34da4114e5f2a1660a47a3c15f4e0b56e27b43abde4227fc49974148619bee18ef19550f2157a7812a164ae2e6c80f7386bc881a9f5646f9cc1d8c703f1b358c4c3d9c1ee98f11c74d6894f5604be4f017294523e3e397747a7059fe7be285e9007e97d80ab5b69e146a37d033af638ef4fd38e1c855bad2e507197b89c21eaeab77d145be19b272bffb2614b0c82949dc739bcf411acf81ad040496aff654cfd3861ebd543fa9d425ba28d23464073a66ac72b366937d80b44edd57670124c0e19049eee2ce0', '\x01b8605b125757202f6798b24e0e63a80875657f07e0ca12c2a27cc9e941b600f13e3683a82a3a8f8498366296a2458d4c0af958', 'legacy', 'pending', 4, 201, '', '', 0, '', '2026-12-06 15:17:36.727575+00', NULL, NULL, '2026-12-06 15:17:36.708981+00', '2026-12-06 15:17:36.727575+00', '/items/{id:h:f3570d7be324bd06}', true);
INSERT INTO strangler_repairs VALUES ('f8c7abc7-8bb3-4d6f-9969-664505522791', 'put-item', 'h:9ec9153e692b4296cc636e31e7a26e4a', 'PUT', 'AbhgWxJXVyAvuTZ8jvv45oSrV8+cGcXIrtyaulnruT1pi7ZaNa65sBH2SOhe', '\x01b8605b125757202f2ea16bdd9a24fd6d67556f52e6efd52e09389067306ee47623fc20d2b5818085e487d17b1e2dd1888c6e44dc5bc2dfc7d6f3eb8832b2de1ee71e03a4bc91075f79ea4133ac2bacf74a0d9a3c3f537180d19fd4630375c4e4a18400d35fd4c0c2fed56ba845c51f804cc35579264ddf96c36e898e7c6dad99d006613dfd2bdcc409dc123f052548390f409f5c256e4d6cb21cd70e85e0f8ff7cc15c5ebbfd21605ed638dfaa88bdfa9234c0a57f14fae16ef73f388ab6ed1fea0a0b4e008e0943ed0cbf06c87397c2aba64958bc2fb28d16af1e1f95b1ffaade251c22b949d00c83af8662d0d7a738f819c6fa55e02a1eb2d3d36cd0f5467abbfe6cff525ac8da1880', '\x01b8605b125757202fdda341d0248b9088a235079055f015b8c45a505d54fa3f8081d39ea73677071ae3c259566202ab1b83a125', 'legacy', 'pending', 1, 201, '', '', 3, 'the secondary (modern) answered 503 Service Unavailable', '2026-12-06 15:17:42.814717+00', NULL, NULL, '2026-12-06 15:17:36.470574+00', '2026-12-06 15:17:40.24009+00', '/items/{id:h:f3570d7be324bd06}', true);
INSERT INTO strangler_repairs VALUES ('9f8abe36-3956-4c57-a085-aaec971c47d2', 'put-item', 'h:05b2a0912e5c3c5c4082f97ade924658', 'PUT', 'AbhgWxJXVyAvbz+UVLmNt2/FdtCeZBOmb7WtoD4RQ8Kfb3G+qw15ys+Z/30g', '\x01b8605b125757202f44eccf25c01d980979e370ac6f1c3480805b29793d991c28744a66f7cbdf19e817a643723b818111afda53edf6f08fdf433512e9d5345aedef7a2e99d33436f6535162246f1af46da94bd4fcc41953fe7cfaa49292db3eefa146d69fc9ba275e9a001b16ef34de2fea219a2ce145f856b760a77daabce88d4dfad7841208a4d0513013d35cdc33098e197d82c6e1d8370100e612c00ddd3357823d192d681e65b9db699374142dc3fffafe35643f9833ce82675a15a9a36e55ea74825662c14682492c8de60261c2b94d592a3e29c746906266466a7bb1e9f2e5310d98b904e0394e40f5ecb1987b964071c46603da60f873a9b66cbe0580fd907b22d9b91e9b3e3a', '\x01b8605b125757202f2a667eb33b6426fae7677d6ba2f97e0324f566c153e7eb6fedab2f606f907d4e55b88647d9a3e5a0ae50ba', 'legacy', 'pending', 3, 201, '', '', 3, 'the secondary (modern) answered 503 Service Unavailable', '2026-12-06 15:17:41.427415+00', NULL, NULL, '2026-12-06 15:17:36.593441+00', '2026-12-06 15:17:40.240184+00', '/items/{id:h:a8831933dd9566d1}', true);
INSERT INTO strangler_repairs VALUES ('0566f712-3f1c-47e3-a776-d164cd83db0b', 'create-item', 'h:ab5e2a87eb63e54185768ae8a631b51a', 'POST', 'AbhgWxJXVyAvxFRxAPJFKLEnUAbtrUOQsIG2DEpstA9cpFlDBD8pgwUFIg', '\x01b8605b125757202f6b452e5d8ed307f8bd108ce0fb7b4f86421c82c2bbb71b52429e8bf42790f4f554982f108a190c6e1631ab735f65ddd11c563298e977b4aca5a3ef472e7b14e96b72665545030ec2f056dd209625d694eace1a3234d715c7609da9e909d18460fa9bca3b1dc02cc5081a1a481873c6c0171c7adee3a820ce89ea7b0a539f0c897355d7dba374df5c3612f72435cac28f381e778f898aedcf461afdb8de6674167a6357f693b3b15f52088269372f4cb21d91576987d07a2ff39b5d8f8c0a64c2a991e31a3fb7091a1f660ccdc6029adc7480cc1b7fb7b7e1255795c86c2573c6c9a5ca699ce15434ccb4a7ead928c22f1e43e40df80b5d3506a7ab6ffc60ff50a822', '\x01b8605b125757202fc1b34e023f9c3e92dad9749105cdf1dac30aae49db8f3487545edaa296a7ffbefa16a64e9dc069606517c7abff6095f8', 'legacy', 'pending', 5, 201, '', 'AbhgWxJXVyAvbX3AhGTc6sgdgiZO/7Xg8Wxoklk0Luzf8ELA7+vyDrs', 2, 'the secondary (modern) answered 503 Service Unavailable', '2026-12-06 15:17:40.95718+00', NULL, NULL, '2026-12-06 15:17:36.796543+00', '2026-12-06 15:17:39.245554+00', '/items/{h:f1e819a1c45b6b3a}', true);
INSERT INTO strangler_repairs VALUES ('79708367-3250-4978-aae7-f05da08f9183', 'put-item', 'h:5e460c9f54e562db51e5af4780568cb2', 'PUT', 'AbhgWxJXVyAvuesj0YSERzxTCdyou0KzbRe9fW2rv/EAjYLMBcoTJBZQJDTU', '\x01b8605b125757202fdf4b3c567eb030da2b07924448e44cd333403b00b65949149f913dd36864092e5fe5ca27ab83c20927cca97c4fb0f5af35b72c13cc44134d57260438b06e59a7f3e3ca4c3673ea2b3628f7c1372a2cf9cc19cc41d1b75114553e402e67ce21349fc90c5b839539b4331d87b025b60b4c8e960e297e3d06cf459fb973626c19dccb1097fb815cfc30310b491c880eb078fe4d0f5d18f5ac85fd11f87c9d6b178c7789a7bf2b353ebf734d6c5558afbeed39d1980370e967fd8986f03e614f705cbd497dc1ff9a76f8a04134dd3613f99e89dab029ec527fa355e948511da420f26543b124bb75975e7f2892b4955fbd44208687021c91f9b9a04cfc2583b64db7040c', '\x01b8605b125757202f8630417da5d91875813c683ad51ad3eddd0558ef69add9d7c56b404be6afd329e420661299831884', 'legacy', 'sent', NULL, NULL, '', '', 0, '', NULL, NULL, '2026-12-06 15:20:39.21026+00', '2026-12-06 15:17:39.210259+00', '2026-12-06 15:17:39.21041+00', '/items/{id:h:f40ac56dbaa4c9d9}', true);
INSERT INTO strangler_repairs VALUES ('bb657fe8-0c17-4a46-ba43-014ccd248329', 'create-item', 'h:a867f7d2312c78d683e22b2205eefe7f', 'POST', 'AbhgWxJXVyAvP5A37ZajDJWDiutIJn3Lan7pYb8APr92wv7kxQc97l8oLA', '\x01b8605b125757202f4936a63bb752f8514af04ce99969c05a4f7349bf50dc6401d6d00b62674d4c0124d9df78145d7ec452380b10463bac3d1bd20453dde213b5abef7671af8dae38036d40b8a92ceb28fb934a586a6173a32ccdb337ffe71b55da7c44d860df206ff2cf9f7edecb2def48f8cfeb1ffeb66bfe15e80cab356aa64831ce34880e606a1761e9afd2a5b62fd2860db4064c055a8388ec87077240fc28aa02fa4e56032d6693bd8bfb7ea6e65cb8faaff5eacb1aa9318cdb4a5fc3fc1761e9c702581e9923e98b4d9d96c83f327f1aa133114eb2b0891762bbabb226d756ad53451251362d86aa410c3f29631ea1437a65bb2afbe8654f25e5bbd663c3a1bb2531d6ac350f999726de3df9b97ebd9722563040da9d2ea99a75e9e7efba7e2902b8819f7d85f1', '\x01b8605b125757202fe98d5b60896bed30e16c9929bf9dadd9406e618d57f957d3124bb2312997b5ee69c27617914e28b20dc13d8932aaa14b', 'legacy', 'pending', 6, 201, '', 'AbhgWxJXVyAvX05rncd8GSXYI8rdTr+SD6ZbqkaUOE6t8wO1ID/meo8', 2, 'the secondary (modern) answered 503 Service Unavailable', '2026-12-06 15:17:40.795895+00', NULL, NULL, '2026-12-06 15:17:36.842409+00', '2026-12-06 15:17:39.245627+00', '/items/{h:4da1f48bf04c24b0}', true);

INSERT INTO strangler_samples OVERRIDING SYSTEM VALUE VALUES (1, 'list-items', '2026-12-06 15:17:36.903364+00', '"AbhgWxJXVyAvdWXyCRo3wVSQp4IvxwB+gz2masywavGWA8iEe11+HpchUG+yTDXlW3kEk0C8QEU4MHtMguU5oK0qJbvPkkPw2Wox+8pQw0LzJTNegx0ibNHsXZBgXb1vMvaZ62oOvUEvdOzIKuGllAMwSDm4BF0wLhiHZbK6/plfI6aIjEClGe8cSX4elkWpjAF2Zc+pkkXc2gDCtU2LEaXuTq+lozFQXWpEJyOIMl5dYQnYaR1V1lHWnuxWp5e7bgRadOX0MitvkezMU/WPet2SQQwjnDCMknWpWHtSebrBlFseaYWs3ZEIQgEZgSlhTalGqIx6NVRm9NfsYkA4LDyzzl1R29/4ZaIRLgO7FmT3Wp4oRU7u/sSWimwBubi/JhDcgOb/mPdz3ucJl57TJzLGtE/vDUGY1azQYiVlD4fpOrtuSUOE0JGO8COUhZnDhqfRE8/l1Nj1HUpFMvtGH/hnhA6Dj4L4s76YSndwPDnAlIZkIhFgQSINoY1JOD0Q4gHv2Xlb93QhxkBVm4BxVSd05PeRNbgLt2YzTKTpVfDlwGau3YZJnI3IkUBZ5q7DpRBbaAX/hw/9419Jj0Y0y/lxH7/1s/H+hh5p+JfGeEyKRkujDYQuz6CCaJPu3f7kWG/qbU5O7NErxF56NJAv+w2yK5I"', true);
INSERT INTO strangler_samples OVERRIDING SYSTEM VALUE VALUES (2, 'list-items', '2026-12-06 15:17:36.950116+00', '"AbhgWxJXVyAv6/HeiL1Mng1en1JkSV24rVjAXezDnoNYXPNGubXUNwTHW0EFRjS9dmbcU0+9gMR2RcmiUuExJeiTZylJYR5NnAhagQEJ5ettY2Jb7IlodN+JCug259gzZRci4KjzcCMiB9+wGnCaHHo1b/p83nuuxwLSZkgyM4loQOmALvHYPrvKWkQJGrHD0dJhtUsk5K6tUd+yVae5YIKH3YEzCMY/49eeNCfIdjY4o2EDvYceAPMN7Buw11ni4kWL7cWK4kQPFEYmr+sdHZZCXM8pes6Hc3N84s+HJjUPDhaiVodRw6YYZwUFHYgN/a0lbWoQSnPiU8UO6/oosGesrkIotJSQcq8K/STKyhgalqY8EkhTY4InnhwzXvCYQkCInZhGpQ7hk4DSqhaMY+ioujDqsq+o4DNEeTCq+YGhmivdYzhWVcfG1p0CVpdiT17r3iBWplzlIAEBIv8xgSyiyZkQTrlXvc3eCSQUtfHIaToIAON2zA6RrqcvPjHtMJWCCP3d5PnXSM7ELI7PqQAap1yTrZ1bjHjtqBcZFSslOQrNKJKta2N0265Z0ho4kTVgbvg7eMbqJafEoASXhX3+bqvw9tmuD3pcwFTC9l8sHb876oMhAePHi4AxtoJTfau5KKOS19YLB0dBTFYIPnXNYpM"', true);

INSERT INTO strangler_schema_migrations VALUES (1, '0001_init', '2026-12-06 15:17:36.076606+00');
INSERT INTO strangler_schema_migrations VALUES (2, '0002_claim_order', '2026-12-06 15:17:36.079278+00');
INSERT INTO strangler_schema_migrations VALUES (20, '0020_idempotency_keys', '2026-12-06 15:17:36.094478+00');
INSERT INTO strangler_schema_migrations VALUES (21, '0021_sessions', '2026-12-06 15:17:36.108648+00');
INSERT INTO strangler_schema_migrations VALUES (30, '0030_patient_data', '2026-12-06 15:17:36.121916+00');
INSERT INTO strangler_schema_migrations VALUES (40, '0040_audit_chain', '2026-12-06 15:17:36.138209+00');
INSERT INTO strangler_schema_migrations VALUES (60, '0060_confirmed_missing', '2026-12-06 15:17:36.138759+00');
INSERT INTO strangler_schema_migrations VALUES (61, '0061_schemas', '2026-12-06 15:17:36.146461+00');
INSERT INTO strangler_schema_migrations VALUES (70, '0070_ramps', '2026-12-06 15:17:36.170221+00');
INSERT INTO strangler_schema_migrations VALUES (71, '0071_change_requests', '2026-12-06 15:17:36.196805+00');

INSERT INTO strangler_secrets VALUES ('hash_key', '\x01b8605b125757202f18c956617f5e0e98b34ce5ffc0d71d75c37fca2cc0d37491e27219275e4ad58657ff26230888bacd48c28a32848f9d2d10d3b6c2430e1ed38c5c2a9e', true, '2026-12-06 15:17:36.202855+00');

SELECT pg_catalog.setval('strangler_audit_id_seq', 6, true);

SELECT pg_catalog.setval('strangler_changes_id_seq', 2, true);

SELECT pg_catalog.setval('strangler_repair_seq', 6, true);

SELECT pg_catalog.setval('strangler_samples_id_seq', 2, true);

ALTER TABLE ONLY strangler_audit_head
    ADD CONSTRAINT strangler_audit_head_pkey PRIMARY KEY (one);

ALTER TABLE ONLY strangler_audit
    ADD CONSTRAINT strangler_audit_pkey PRIMARY KEY (id);

ALTER TABLE ONLY strangler_changes
    ADD CONSTRAINT strangler_changes_pkey PRIMARY KEY (id);

ALTER TABLE ONLY strangler_idempotency_keys
    ADD CONSTRAINT strangler_idempotency_keys_pkey PRIMARY KEY (key);

ALTER TABLE ONLY strangler_leases
    ADD CONSTRAINT strangler_leases_pkey PRIMARY KEY (name);

ALTER TABLE ONLY strangler_legacy_clients
    ADD CONSTRAINT strangler_legacy_clients_pkey PRIMARY KEY (route, hour, client);

ALTER TABLE ONLY strangler_noise
    ADD CONSTRAINT strangler_noise_pkey PRIMARY KEY (route, path);

ALTER TABLE ONLY strangler_overrides
    ADD CONSTRAINT strangler_overrides_pkey PRIMARY KEY (route);

ALTER TABLE ONLY strangler_ramps
    ADD CONSTRAINT strangler_ramps_pkey PRIMARY KEY (route);

ALTER TABLE ONLY strangler_repair_keys
    ADD CONSTRAINT strangler_repair_keys_pkey PRIMARY KEY (entity, key);

ALTER TABLE ONLY strangler_repairs
    ADD CONSTRAINT strangler_repairs_pkey PRIMARY KEY (id);

ALTER TABLE ONLY strangler_repairs
    ADD CONSTRAINT strangler_repairs_seq_key UNIQUE (seq);

ALTER TABLE ONLY strangler_route_hours
    ADD CONSTRAINT strangler_route_hours_pkey PRIMARY KEY (route, hour);

ALTER TABLE ONLY strangler_samples
    ADD CONSTRAINT strangler_samples_pkey PRIMARY KEY (id);

ALTER TABLE ONLY strangler_schema_migrations
    ADD CONSTRAINT strangler_schema_migrations_pkey PRIMARY KEY (version);

ALTER TABLE ONLY strangler_schemas
    ADD CONSTRAINT strangler_schemas_pkey PRIMARY KEY (route, method, status);

ALTER TABLE ONLY strangler_secrets
    ADD CONSTRAINT strangler_secrets_pkey PRIMARY KEY (name);

ALTER TABLE ONLY strangler_sessions
    ADD CONSTRAINT strangler_sessions_pkey PRIMARY KEY (id);

CREATE INDEX strangler_audit_at ON strangler_audit USING btree (at, id);

CREATE INDEX strangler_audit_route ON strangler_audit USING btree (route, at, id);

CREATE INDEX strangler_changes_created ON strangler_changes USING btree (created_at, id);

CREATE UNIQUE INDEX strangler_changes_pending ON strangler_changes USING btree (route) WHERE (state = 'pending'::text);

CREATE INDEX strangler_idempotency_keys_at ON strangler_idempotency_keys USING btree (at);

CREATE INDEX strangler_idempotency_keys_intent ON strangler_idempotency_keys USING btree (intent_id);

CREATE INDEX strangler_legacy_clients_hour ON strangler_legacy_clients USING btree (hour);

CREATE INDEX strangler_repair_keys_added ON strangler_repair_keys USING btree (entity, added_at, key);

CREATE INDEX strangler_repairs_created ON strangler_repairs USING btree (created_at, id);

CREATE INDEX strangler_repairs_due ON strangler_repairs USING btree (next_attempt_at) WHERE (state = 'pending'::text);

CREATE INDEX strangler_repairs_head ON strangler_repairs USING btree (resource, seq) WHERE (state = ANY (ARRAY['pending'::text, 'dead'::text]));

CREATE INDEX strangler_repairs_pending_seq ON strangler_repairs USING btree (seq) WHERE (state = 'pending'::text);

CREATE INDEX strangler_repairs_sent ON strangler_repairs USING btree (lease_until) WHERE (state = 'sent'::text);

CREATE INDEX strangler_repairs_state ON strangler_repairs USING btree (state, updated_at);

CREATE INDEX strangler_repairs_unerased ON strangler_repairs USING btree (id) WHERE ((state = ANY (ARRAY['done'::text, 'skipped'::text, 'discarded'::text])) AND (target <> ''::text));

CREATE INDEX strangler_repairs_unhashed ON strangler_repairs USING btree (id) WHERE (resource_view = ''::text);

CREATE INDEX strangler_route_hours_hour ON strangler_route_hours USING btree (hour);

CREATE INDEX strangler_samples_at ON strangler_samples USING btree (at, id);

CREATE INDEX strangler_samples_route ON strangler_samples USING btree (route, at, id);

CREATE INDEX strangler_sessions_last_seen ON strangler_sessions USING btree (last_seen);

