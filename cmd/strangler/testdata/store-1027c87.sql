-- The embedded state store of strangler 1027c87 (store migrations up to
-- 0071; main has ten more), as `sqlite3 FILE .dump` wrote it, for
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
PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE strangler_schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT NOT NULL,
			applied_at TEXT NOT NULL
		) STRICT;
INSERT INTO strangler_schema_migrations VALUES(1,'0001_init','2026-12-06T15:09:30.198523Z');
INSERT INTO strangler_schema_migrations VALUES(2,'0002_claim_order','2026-12-06T15:09:30.198599Z');
INSERT INTO strangler_schema_migrations VALUES(20,'0020_idempotency_keys','2026-12-06T15:09:30.198790Z');
INSERT INTO strangler_schema_migrations VALUES(21,'0021_sessions','2026-12-06T15:09:30.198902Z');
INSERT INTO strangler_schema_migrations VALUES(30,'0030_patient_data','2026-12-06T15:09:30.239574Z');
INSERT INTO strangler_schema_migrations VALUES(40,'0040_audit_chain','2026-12-06T15:09:30.259122Z');
INSERT INTO strangler_schema_migrations VALUES(60,'0060_confirmed_missing','2026-12-06T15:09:30.259618Z');
INSERT INTO strangler_schema_migrations VALUES(61,'0061_schemas','2026-12-06T15:09:30.259794Z');
INSERT INTO strangler_schema_migrations VALUES(70,'0070_ramps','2026-12-06T15:09:30.260099Z');
INSERT INTO strangler_schema_migrations VALUES(71,'0071_change_requests','2026-12-06T15:09:30.260423Z');
CREATE TABLE strangler_repairs (
    id              TEXT PRIMARY KEY,
    route           TEXT NOT NULL,
    resource        TEXT NOT NULL,
    method          TEXT NOT NULL,
    target          TEXT NOT NULL,
    header          BLOB NOT NULL,
    body            BLOB NOT NULL,
    primary_side    TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN
                        ('sent', 'pending', 'skipped', 'unknown', 'done', 'dead', 'discarded')),
    seq             INTEGER UNIQUE,
    status          INTEGER,
    location        TEXT NOT NULL DEFAULT '',
    primary_id      TEXT NOT NULL DEFAULT '',
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT '',
    next_attempt_at TEXT,
    lease_owner     TEXT,
    lease_until     TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
, resource_view TEXT NOT NULL DEFAULT '', sealed INTEGER NOT NULL DEFAULT 0) STRICT;
INSERT INTO strangler_repairs VALUES('6cef7cb9-3eb1-4dcf-ac4e-2093458bc63d','put-item','h:04f2f6b2d90868327e7ad822731c7aab','PUT','AbhgWxJXVyAvoqN9t2w616NLhtG2ADyToZKCIOKVreZpclmK4PejvsjaqN/h',X'01b8605b125757202f95831443fd07c53da135cac7cd0ef0d70a1389f0fe0cb541cbc78ca9d410a3056609071bd41180ab27fec25fa602fbdf6c4d04cabbe02a5ed0ca44a3e969d731ae327bfa6a13e0416a4f76a4c70b5af5c3abfe0530d12440095647a12530269b9cc34c5ddb81b908936b7a77246d4fdd3e8d4479c955b0b2250efb892c59beb7b9454808d03be988379410dce7204a467b88b8a56c2e0fb3707db1b50ee14a6ea375e6365c445f54c8df9601eb2d1f485cd758bcefea8d8374c54ea854193c9cabc8278c86a790093e40139d44964837ca1b0733a35e8ce3aac524a9d015679569509ed09264329ae400d8a9863aa44583caab0426a5a2971a7b94c34c3ca9dd3f63',X'01b8605b125757202f96d9bdff5ec03106275382eecb3ba926141062c9aa2956873fb5811cfb4f323c8b65d4dac9fb3d3887eae0','legacy','pending',1,201,'','',2,'the secondary (modern) answered 503 Service Unavailable','2026-12-06T15:09:34.863564Z',NULL,NULL,'2026-12-06T15:09:30.464507Z','2026-12-06T15:09:32.267741Z','/items/{id:h:c0be2816ecb42d98}',1);
INSERT INTO strangler_repairs VALUES('43f6bef4-7688-4bb5-8cc7-4b2ed66ac547','put-item','h:04f2f6b2d90868327e7ad822731c7aab','PUT','AbhgWxJXVyAvmkLhXLKW4lBbNnD2L59jeq3+nTbxYQy4sYInmmqpjKyl0C2z',X'01b8605b125757202f47e6b3a453b9dfe6ff2d479177438207cd1d7335f26017e841009a9b3cb2d1ac6c4d69390fe2691c811689e4613ac2ca9a018688d9d1286e9fcbf8653e16d3ba6fb110b23f78775a3f3b46bdeba88082539774e0475e1fa2b9196ce5809b7bb410bfb43f3229a1bb4c0fad217ea2cd063c2733b39feddfbf0e721f36f11d5efd75c8a761d978d1226a95c4e93ad5bf1727e5f273b40aba9604639fd7401023e89ba3b6e1ef778f3d62b6debae904be11beea4cbd63aa1338ff97e8faec12a272cf3ec0c71f1dc707a7b0ed4dfe1e9789d6c878349a62b45f5f80f9cc6619458b957f6c24e8c72e05bb146f37e8d8b645f8e7aeb1d2e4050c051d15cc0504661c6916',X'01b8605b125757202fedcc4e331b68da88f08fa3c9130df404488641433987418c01c1ec14173735375d8405cb992a9432441dd4','legacy','pending',2,201,'','',0,'','2026-12-06T15:09:30.480381Z',NULL,NULL,'2026-12-06T15:09:30.479370Z','2026-12-06T15:09:30.480381Z','/items/{id:h:c0be2816ecb42d98}',1);
INSERT INTO strangler_repairs VALUES('bece2613-ddbb-45fd-ad58-e291a90c75cb','put-item','h:09e6c4f10b146ff7e41dc88d2fd44f2a','PUT','AbhgWxJXVyAvmA2wOlgUzjpMWOwqIiFvB0wIpr8MD7DbZRMtejTd+HuVAB5s',X'01b8605b125757202f2d6c59f1f3b6b63e4c6ef4ac08cdbaa6ef6b558cfb7b6107acc6546feb648a51e663845ca67eb8014fdf2c92927addf809d1b76ce0215972483306de43c482eb647799e86697e904699698a5ff15865674842a77743a89b8640567b430db5b94b0e2e2565938475c6cbe33e03602f59713792c3eb95dc983a2f09bf076483fbb48705e5a7514d4a9729e87a85c9d37df4761926b0786470d8397573283781f0f5fa5a6f61b975e37bf58594de70fe9ec3c91eb97a6c9a0004bc23245006624414a1227d849eeb3f47c20d37427a1c67eaf060ac53273d33d4e97eaed991f43ca34957b47c6807e0d6c065214aa79f9e2318877617f03a6a9b0562be91bf9b2e615ac',X'01b8605b125757202f0b4470867d9887c5b5dde40333ed8a943a197f1878acd370bac94365e0d45d56a4a54ba092da3b6c0ceec6','legacy','pending',3,201,'','',3,'the secondary (modern) answered 503 Service Unavailable','2026-12-06T15:09:36.324559Z',NULL,NULL,'2026-12-06T15:09:30.530715Z','2026-12-06T15:09:34.268040Z','/items/{id:h:96a3f0fc7d8ce401}',1);
INSERT INTO strangler_repairs VALUES('97ccd829-f78b-49f4-9696-ce3be06228cc','put-item','h:04f2f6b2d90868327e7ad822731c7aab','PUT','AbhgWxJXVyAv4QZsAEHWvgGbz5e+rjN409KWDTAGt8fjiVJFeX8ynjrD+7+M',X'01b8605b125757202f422822cba182fae092828edbb9a1b6447c0680d01e6dd74276cf165879e3999a8c19f1edb15a31b62b575af6493d088fe65c8dbd46b7f86d041839fcc62e50f36ff39ddd035fbc1959ca29405459eb7e11f4cbcca8b113f77301aa5e85c3db09c02aa3a35b79337a9e6dc1fdcdae196df2c4d4eb2aa121954df746c4c0f9e1934a494c290685c26eaaf3e1ad2003b00ffa6a53ee24f045c123d546729a7b6cd667b5840a06ace23ecb016d139486c9d782c8a1ac08805f4df77cae44e68a14838e95908e282be3b6d674580dfb79ba0b10d3a03f2e4a05f615519494a4115f4b6020273054afd319fdb117fbcf85700003b36a7b8ddbfaad5d67c3e3531f511932ec',X'01b8605b125757202ffd7d3d4e50dee0b6c0afdeea0a99e6fa40d2a70d0c92c9f086e3ea919ae7c86aba504559bdce55ff3c6f0d','legacy','pending',4,201,'','',0,'','2026-12-06T15:09:30.598149Z',NULL,NULL,'2026-12-06T15:09:30.582455Z','2026-12-06T15:09:30.598149Z','/items/{id:h:c0be2816ecb42d98}',1);
INSERT INTO strangler_repairs VALUES('44d6d0fa-dc51-4f3c-9dfd-ec9ce8099306','create-item','h:7083de53d4e1bbb1dd8f50f5c59780b9','POST','AbhgWxJXVyAvD+izmQ+14pXmgL3o09QS2KVtSeAVxOwYSXRD9hr14efgBw',X'01b8605b125757202f3a60b06ba2f0d94d867f5482b42e9a5c7fabc96126fe9d28f5ec81ef1e7c43f71be09cd0142399bb14fa05a1d4db1b0287d191c0268e162a34761bea9829e5f92da88f6e0baac2f69e4fecc66c66ead23039139fd1b68ad566d51154d2206c48ef71b0457044d3a2bacf04cfdaf8bf32d4888bc12a549178e4cd152dc4aaa320fb4baf8c5fe6ab99d1c118afcfc26001eee45a466ae5d01fa66183b274470f0da1063e0a1717c2cdb1fd8f47be9a1cb1c5d51089bc880805f2c80bdbec52519b3323c95c1130533e79303be147fe8872875a72cc8fc4f1a0a483fae9033a44010470113ed448e6ca7939d7b79b1a30340d062ff399e383c0d1bfba835a287400febd',X'01b8605b125757202f3a5bfb5b81454990115d7953fdf71f3dfc830b79a3ac83492ba5b9e8761eadf0201fbab85c126e0b4cb5c43d5059b521','legacy','pending',5,201,'','AbhgWxJXVyAvafLBAnwmLWud144MdmOSGcvr5r3B43+cOFnqRA0xJaw',2,'the secondary (modern) answered 503 Service Unavailable','2026-12-06T15:09:35.301633Z',NULL,NULL,'2026-12-06T15:09:30.659815Z','2026-12-06T15:09:33.270803Z','/items/{h:19307d328fecf6bd}',1);
INSERT INTO strangler_repairs VALUES('1522f615-a837-442c-bab1-b3188ac6a2ae','create-item','h:e3040aeb46b2cc32e863b44459c5f8b4','POST','AbhgWxJXVyAvfL7fA3ihC0acFacHn6xioDRqGHQXmvWc8pLRd/PRlAwEgw',X'01b8605b125757202f00add2cfae32051424e1c45601c6dddfdf5b3c6c540b1962c1dd33bc172f8b6b22248546d4098bb24fdadffbb0c6323cef341b8f6c8d019f3383c4bb5240698eee3e9e41af7a347122c7c3aa91cd8d13ea41618bafe1dd55e3a9642d51c510e1276e95aeac9beeefdcc062a8273e64539617f43e33027d47407b92b533373b9289d177c911cb99beed994cbae98999057fa8ca35790bf1888cef2a272082037c1c33bf4c5c75d1800b6a37d3b505e829e5b2f381d2640713839a6c42abac5b156652da7c4b6e6fe1cd72054b71a3d363f61b9f04c10e9971b45a055ebd0fec055da79f7b9e651480faec7d0a7c42f9dc0eed12cf3625f1e0e933398a884dc456aea13270864998c2592176c3d972df034fae786fd6740a676b7bcee10ac6b1e9c44c',X'01b8605b125757202fb7deff78b2468dccb6ead9ff94455ff47cb1764178e210b88fea2a331e37cf654ca166c45b84f14ee369f891090a091d','legacy','pending',6,201,'','AbhgWxJXVyAvbIPylfBCul/w864Mld/DKkp6xkCtj9jzqPMzVwuHpIc',2,'the secondary (modern) answered 503 Service Unavailable','2026-12-06T15:09:34.627517Z',NULL,NULL,'2026-12-06T15:09:30.753833Z','2026-12-06T15:09:33.270840Z','/items/{h:208dca8c1de6799f}',1);
INSERT INTO strangler_repairs VALUES('7226e63f-23a6-4cca-b155-5f4eaa318fa7','put-item','h:9885de83c9288abf0eb33eaf1b4528a4','PUT','AbhgWxJXVyAvuT/hNb0ylcTlP5IhzSNin3VNnFVM2A1a1l2xl8jlM28nRGcw',X'01b8605b125757202fd1a6bfd47b81ecf2cf57299adf3d6a764493cdef475ef29449f00163b7ca5dd7faf7591514fc98fb55bbc30d39d0f545a38c126ee531388cfdd8afb39f271136a607d5da1050c1c60192c51b7c3cbd747c49c69506f77a5e165b47613dc394aade86762888340218e58d15087fe70e627cc138eedfb106fb31396a039c5433cdcb5b1265626fad2704e4cf6b286c314207ef74813ae0a1e4f0b22764d36b575b395a13a4343b16cef18dc66d073fbde289f6a06695c5c6687ce6be519f52207ee05a81846f644df13e1a157ce8569f4178cddc5b8c700121fb260df792046fc9b40965241ffa61074283dfa36901fdeb6acf5a0b47bbfad8b2af189cc8bae4178c82',X'01b8605b125757202fca2ea8cf1427b4666b4079bf4f40b108e1f26deb5d254198fe0c0e5d0094b6d5d9dbfee2814cf7a8','legacy','sent',NULL,NULL,'','',0,'',NULL,NULL,'2026-12-06T15:12:33.108198Z','2026-12-06T15:09:33.108197Z','2026-12-06T15:09:33.108301Z','/items/{id:h:7b4e4c0385d64ded}',1);
CREATE TABLE strangler_sequences (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT;
INSERT INTO strangler_sequences VALUES('strangler_repair_seq',6);
CREATE TABLE strangler_overrides (
    route      TEXT PRIMARY KEY,
    mode       TEXT NOT NULL,
    percent    REAL,
    version    INTEGER NOT NULL CHECK (version > 0),
    actor      TEXT NOT NULL,
    reason     TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;
INSERT INTO strangler_overrides VALUES('get-item','modern',30.0,1,'alice','fixture override','2026-12-06T15:09:30.968427Z');
INSERT INTO strangler_overrides VALUES('put-note','modern',1.0,1,'ramp','fixture ramp','2026-12-06T15:09:31.266433Z');
CREATE TABLE strangler_audit (
    id           INTEGER PRIMARY KEY,
    at           TEXT NOT NULL,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    route        TEXT NOT NULL,
    from_mode    TEXT NOT NULL,
    to_mode      TEXT NOT NULL,
    from_percent REAL,
    to_percent   REAL,
    reason       TEXT NOT NULL,
    forced       INTEGER NOT NULL,
    detail       TEXT NOT NULL
, prev_hash TEXT, hash TEXT) STRICT;
INSERT INTO strangler_audit VALUES(1,'2026-12-06T15:09:30.968427Z','alice','flip','get-item','legacy','modern',NULL,30.0,'fixture override',0,'','0000000000000000000000000000000000000000000000000000000000000000','5098554052fa5829c0f480aabd8696351148b5272bdc5fb29513deeec287dba3');
INSERT INTO strangler_audit VALUES(2,'2026-12-06T15:09:31.032372Z','alice','change_request','put-note','legacy','modern',NULL,25.0,'fixture ramp',0,'change request 1 (ramp to modern at 1%, 5%, 25% every 7d) waits for 1 approval within 24 h','5098554052fa5829c0f480aabd8696351148b5272bdc5fb29513deeec287dba3','326bf70bd26added4edeff0614cfcf418c8a2a447f6bd81164146b99cdfbd655');
INSERT INTO strangler_audit VALUES(3,'2026-12-06T15:09:31.041650Z','bob','change_approve','put-note','legacy','modern',NULL,25.0,'fixture approval',0,'change request 1 (alice''s ramp to modern at 1%, 5%, 25% every 7d): approval 1 of 1','326bf70bd26added4edeff0614cfcf418c8a2a447f6bd81164146b99cdfbd655','f13cb65237889458cf98886f795501fa3fbdb0e1659b16ceae560463ed1878e1');
INSERT INTO strangler_audit VALUES(4,'2026-12-06T15:09:31.041666Z','alice','ramp_start','put-note','legacy','modern',NULL,25.0,'fixture ramp',0,'ramp to modern at 1%, 5%, 25% every 7d; the first step now; approved by bob','f13cb65237889458cf98886f795501fa3fbdb0e1659b16ceae560463ed1878e1','8dc821dec5966730de3dc2c3da87e07b1e8239ad0394ceb5c62498c8ba145627');
INSERT INTO strangler_audit VALUES(5,'2026-12-06T15:09:31.266433Z','ramp','flip','put-note','legacy','modern',NULL,1.0,'fixture ramp',0,'ramp step 1 of 3 (to modern at 1%, 5%, 25% every 7d), started by alice, approved by bob','8dc821dec5966730de3dc2c3da87e07b1e8239ad0394ceb5c62498c8ba145627','a382f1d251ed9e0b41a3cb74bca9cc3c1bb37f0e73d1713cadbb35b413bc915d');
INSERT INTO strangler_audit VALUES(6,'2026-12-06T15:09:33.094306Z','alice','change_request','list-items','shadow','modern',NULL,100.0,'fixture change request',0,'change request 2 (shadow → modern) waits for 1 approval within 24 h','a382f1d251ed9e0b41a3cb74bca9cc3c1bb37f0e73d1713cadbb35b413bc915d','ee4de1e2113ab9b41c262b784eedd14acb40c06da1467b881d9ae9b8a79e9f33');
CREATE TABLE strangler_route_hours (
    route             TEXT NOT NULL,
    hour              TEXT NOT NULL,
    requests          INTEGER NOT NULL,
    modern            INTEGER NOT NULL,
    fallbacks         INTEGER NOT NULL,
    shadow_matches    INTEGER NOT NULL,
    shadow_mismatches INTEGER NOT NULL,
    last_fallback_at  TEXT, confirmed_missing INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (route, hour)
) STRICT;
CREATE TABLE strangler_legacy_clients (
    route    TEXT NOT NULL,
    hour     TEXT NOT NULL,
    client   TEXT NOT NULL,
    requests INTEGER NOT NULL,
    PRIMARY KEY (route, hour, client)
) STRICT;
CREATE TABLE strangler_samples (
    id     INTEGER PRIMARY KEY,
    route  TEXT NOT NULL,
    at     TEXT NOT NULL,
    sample TEXT NOT NULL
, sealed INTEGER NOT NULL DEFAULT 0) STRICT;
INSERT INTO strangler_samples VALUES(1,'list-items','2026-12-06T15:09:30.822360Z','"AbhgWxJXVyAvr/I4RTWXQbDMtxOCy6nciuCDmyq70UjDSxAYSMSL3pAG+PiT8yxwQ+HNY8JEeMCBqTM8BhVcLuhe3DEbdU8s+8ynMpPCxcjx+hQreaxniiUkwhMd54ktuzgkssWamwNjwZxHrBXskBUE/2u6jM8NPFo1v7stc7bg1Im0hFKWAg9Lrq4rFh30POWYjnDn8zSVZeuSW76C+aHk5KsmtP+0DEsWyKUAWERFHw5No9emDUk3UkmkH/TMjZ6aJOMbk41nUOHFuInhtBh4IvCwpf0UksmNhXe0vfAPENkjKXU+ED5+ySgEW3H/i9TY9Uegq5Km2K3EXjH/eN1aRBN5huEoVqKOoiaHfjDTWkbOCvBDYxc0UR5N5E3OR9HVg7p0hJd1bd0qSdOVyHIYM7E1+v3gnbXnuFEC8Rf7oAQrbpxFlBWzv41Wet/xovj0p/kvIqeU6DVKG7sbW89x9zzZUEyfXwhx3qJseSEm2A5097LcyppqlF+ASF+5S2IAvP2pZWX+nUjdjXW+OuYiNSxcq/oOpZ7jOsVPLqrhOTl8IipIVKRSQbb4Od0wpoRonrDMjHsfCl8YdMnCTNcDiK/R26OpUuPG/QCcBaj+V11/rjVZwQP/dnK8VoWV9QXxigtwoC0J/csB/MnuDf8RvBg"',1);
INSERT INTO strangler_samples VALUES(2,'list-items','2026-12-06T15:09:30.886515Z','"AbhgWxJXVyAvSJGbG/A3kvzd7UIP/JEnqij7J0SwZGZ3uWp87k1tOv/SJ40ITD/GklyP4ZdeTmjA0Tgh/AAjCcuaOU+l1Hmzv/m/3U73pmhx2BEd/Gildmkj/um14R+SPnZKSEDRxUVnscA+C7URHKrePHevjLX+9hadhWeksq2R12hqVSbV7sE11c+k/tUfrkloXjjDCQqLSOPfc+2sEjowXhQihZhlmR19LRIqL0h3cszqNlFBCfY6h1aV2CYpJpNL+XGU+40tceitVUAuoPzbefm7OV48UNSsVo9bThfqap5NDNcJrnz4Sf0uSlZO9nQuv0OXFRxOAo8mshKMyFuEj5FOFVsT4GF+jkpttW4dUUYoR/Ll5s71BtzZ+oYf7RkTA61Hzby5WF+CxgyTu3Ch3D3NMujTNO5ivQ/PfoymMWBRmKFEh9fqszDZuGLJKr9aQZeDBnnEbq/wy5kATb0zSwZ45p+Y6bcNWsf8COQYntbmYFB6jeY5RY73haOdK6irfW0yDGBBiGhV1aYA2YShJBFbghp3KOvMtImU2auTIl4iM3JPffKEfeXtPJ0CmSanT+QMn8wyNS6S1XHT3HE5F6dkq2xR5zl67mKAIksUYCHaY/XvKfN0Mu0Zjcq2rqpr4Pa3PBY2I1OV1NZhrc/pFg"',1);
CREATE TABLE strangler_noise (
    route    TEXT NOT NULL,
    path     TEXT NOT NULL,
    added_at TEXT NOT NULL,
    PRIMARY KEY (route, path)
) STRICT;
CREATE TABLE strangler_repair_keys (
    entity   TEXT NOT NULL,
    key      TEXT NOT NULL,
    added_at TEXT NOT NULL, sealed_key TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (entity, key)
) STRICT;
CREATE TABLE strangler_idempotency_keys (
    key         TEXT PRIMARY KEY,  -- SHA-256 of the client's key, hex
    fingerprint TEXT NOT NULL,     -- SHA-256 of method, target and body, hex
    intent_id   TEXT NOT NULL,     -- the journaled write (strangler_repairs.id)
    at          TEXT NOT NULL      -- when it named that write; swept a day later
) STRICT;
INSERT INTO strangler_idempotency_keys VALUES('h:03fcea7ed2a5903e2beefe975ba3076a','h:2cc6f47a920e2e7420c37083a2f93fd5','1522f615-a837-442c-bab1-b3188ac6a2ae','2099-12-06T15:09:30.754029Z');
CREATE TABLE strangler_sessions (
    id         TEXT PRIMARY KEY,  -- SHA-256 of the cookie's session id, hex
    actor      TEXT NOT NULL,     -- the admin token's name
    binding    TEXT NOT NULL,     -- ties the session to that token's value
    created_at TEXT NOT NULL,
    last_seen  TEXT NOT NULL      -- idle sessions expire from here
) STRICT;
CREATE TABLE strangler_secrets (
    name       TEXT PRIMARY KEY,
    value      BLOB NOT NULL,
    sealed     INTEGER NOT NULL,
    created_at TEXT NOT NULL
) STRICT;
INSERT INTO strangler_secrets VALUES('hash_key',X'01b8605b125757202f8df4d37b8bac3295891502ff926b83d1561eb5d8f5dce74938db1d5193dae633c51fc975471f2d08fb167f338998e65480bdccca9e30de042320f3ea',1,'2026-12-06T15:09:30.261502Z');
CREATE TABLE strangler_audit_head (
    one               INTEGER PRIMARY KEY CHECK (one = 1),
    last_id           INTEGER NOT NULL,  -- the newest chained entry; 0 for none
    hash              TEXT NOT NULL,     -- its hash, hex; the genesis hash (64 zeros) for none
    -- Entries up to this id were written before the chain existed. The
    -- migration chains them as they are now (migrate.go's after-step), so
    -- a change to them is detectable from then on, not before.
    pre_chain_last_id INTEGER NOT NULL,
    started_at        TEXT NOT NULL
) STRICT;
INSERT INTO strangler_audit_head VALUES(1,6,'ee4de1e2113ab9b41c262b784eedd14acb40c06da1467b881d9ae9b8a79e9f33',0,'2026-12-06T15:09:30.258Z');
CREATE TABLE strangler_schemas (
    route      TEXT NOT NULL,
    method     TEXT NOT NULL,
    status     INTEGER NOT NULL,
    doc        TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (route, method, status)
) STRICT;
CREATE TABLE strangler_ramps (
    route         TEXT PRIMARY KEY,
    mode          TEXT NOT NULL,             -- fallback | modern
    steps         TEXT NOT NULL,             -- JSON array of percents, rising
    every_ns      INTEGER NOT NULL CHECK (every_ns > 0),
    taken         INTEGER NOT NULL,          -- steps taken: steps[taken] is next
    state         TEXT NOT NULL CHECK (state IN ('running', 'paused', 'held', 'done', 'cancelled')),
    next_at       TEXT NOT NULL,             -- when the next step is due
    waiting       TEXT NOT NULL,             -- why a due step is not taken (a gate); '' when not waiting
    waiting_since TEXT,
    note          TEXT NOT NULL,             -- why it is paused, held, done or cancelled
    -- The route's flags as the ramp last set or saw them: a change by
    -- anyone else pauses the ramp (the guard's holds it).
    at_mode       TEXT NOT NULL,
    at_percent    REAL,
    at_version    INTEGER NOT NULL,
    actor         TEXT NOT NULL,             -- who started it
    reason        TEXT NOT NULL,
    approved_by   TEXT NOT NULL,             -- who approved it, on a route that needs approvals
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    version       INTEGER NOT NULL CHECK (version > 0)
) STRICT;
INSERT INTO strangler_ramps VALUES('put-note','modern','[1,5,25]',604800000000000,1,'running','2099-12-13T15:09:31.266074Z','',NULL,'','modern',1.0,1,'alice','fixture ramp','bob','2026-12-06T15:09:31.041666Z','2026-12-06T15:09:31.266074Z',2);
CREATE TABLE strangler_leases (
    name  TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    until TEXT NOT NULL
) STRICT;
INSERT INTO strangler_leases VALUES('ramps','vm:22542:9db7936c','2026-12-06T15:09:46.266074Z');
CREATE TABLE strangler_changes (
    id            INTEGER PRIMARY KEY,
    route         TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('flip', 'clear', 'ramp')),
    -- flip and clear: where the route would go; ramp: the ramp's mode.
    mode          TEXT NOT NULL,
    percent       REAL,
    forced        INTEGER NOT NULL,
    ramp_steps    TEXT NOT NULL,             -- ramp: JSON array of percents; '' otherwise
    ramp_every_ns INTEGER NOT NULL,
    -- The route as the requester saw it: approving a request for a route
    -- that changed since applies nothing.
    from_mode     TEXT NOT NULL,
    from_percent  REAL,
    base_version  INTEGER NOT NULL,
    requester     TEXT NOT NULL,
    reason        TEXT NOT NULL,
    needed        INTEGER NOT NULL CHECK (needed > 0),  -- approvals besides the requester's
    approvers     TEXT NOT NULL,             -- JSON array of token names, in order
    state         TEXT NOT NULL CHECK (state IN ('pending', 'applied', 'rejected', 'expired', 'stale')),
    decided_by    TEXT NOT NULL,
    decision      TEXT NOT NULL,             -- the rejection's reason, or why it is stale
    decided_at    TEXT,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    version       INTEGER NOT NULL CHECK (version > 0)
) STRICT;
INSERT INTO strangler_changes VALUES(1,'put-note','ramp','modern',25.0,0,'[1,5,25]',604800000000000,'legacy',NULL,0,'alice','fixture ramp',1,'["bob"]','applied','bob','','2026-12-06T15:09:31.041650Z','2026-12-06T15:09:31.032372Z','2026-12-07T15:09:31.032372Z',2);
INSERT INTO strangler_changes VALUES(2,'list-items','flip','modern',100.0,0,'',0,'shadow',NULL,0,'alice','fixture change request',1,'[]','pending','','',NULL,'2026-12-06T15:09:33.094306Z','2099-12-07T15:09:33.094306Z',1);
CREATE INDEX strangler_repairs_head ON strangler_repairs (resource, seq)
    WHERE state IN ('pending', 'dead');
CREATE INDEX strangler_repairs_due ON strangler_repairs (next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX strangler_repairs_sent ON strangler_repairs (lease_until)
    WHERE state = 'sent';
CREATE INDEX strangler_repairs_state ON strangler_repairs (state, updated_at);
CREATE INDEX strangler_repairs_created ON strangler_repairs (created_at, id);
CREATE INDEX strangler_audit_at ON strangler_audit (at, id);
CREATE INDEX strangler_audit_route ON strangler_audit (route, at, id);
CREATE INDEX strangler_route_hours_hour ON strangler_route_hours (hour);
CREATE INDEX strangler_legacy_clients_hour ON strangler_legacy_clients (hour);
CREATE INDEX strangler_samples_route ON strangler_samples (route, at, id);
CREATE INDEX strangler_samples_at ON strangler_samples (at, id);
CREATE INDEX strangler_repair_keys_added ON strangler_repair_keys (entity, added_at, key);
CREATE INDEX strangler_repairs_pending_seq ON strangler_repairs (seq)
    WHERE state = 'pending';
CREATE INDEX strangler_idempotency_keys_at ON strangler_idempotency_keys (at);
CREATE INDEX strangler_idempotency_keys_intent ON strangler_idempotency_keys (intent_id);
CREATE INDEX strangler_sessions_last_seen ON strangler_sessions (last_seen);
CREATE INDEX strangler_repairs_unerased ON strangler_repairs (id)
    WHERE state IN ('done', 'skipped', 'discarded') AND target <> '';
CREATE INDEX strangler_repairs_unhashed ON strangler_repairs (id)
    WHERE resource_view = '';
CREATE UNIQUE INDEX strangler_changes_pending ON strangler_changes (route) WHERE state = 'pending';
CREATE INDEX strangler_changes_created ON strangler_changes (created_at, id);
COMMIT;
