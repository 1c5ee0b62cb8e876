-- Payload enforcement: batch and item payloads against their automation's
-- batch_schema and item_schema, and schema changes against existing
-- payloads.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS automation_core;
CREATE SCHEMA ps_test;
SET search_path = ps_test, automation_core, public;

-- An invalid schema is refused when set (22023)
SELECT ac_try($$INSERT INTO automation_core.automation (name, item_schema) VALUES ('ps_bad', '{"type":"integr"}')$$, true);
SELECT ac_try($$INSERT INTO automation_core.automation (name, batch_schema) VALUES ('ps_bad', '{"$ref":"https://example.com/s.json"}')$$, true);

INSERT INTO automation_core.automation (id, name, batch_schema, item_schema) VALUES
	('00000000-0000-0000-0000-00000000000a', 'ps_orders',
	 '{"type":"object","required":["customer"],"properties":{"customer":{"type":"string","minLength":1}}}',
	 '{"type":"object","required":["sku","qty"],
	   "properties":{"sku":{"type":"string","pattern":"^[A-Z]{3}-\\d{4}$"},
	                 "qty":{"type":"integer","minimum":1},
	                 "note":{"type":"string"}},
	   "additionalProperties":false}');
SELECT ac_try($$UPDATE automation_core.automation SET item_schema = '{"minLength":-1}' WHERE id = '00000000-0000-0000-0000-00000000000a'$$, true);

-- Batch payloads
SELECT ac_try($$INSERT INTO automation_core.batch (id, automation_id, name, payload) VALUES
	('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-00000000000a', 'b1', '{"customer":""}')$$, true);
INSERT INTO automation_core.batch (id, automation_id, name, payload) VALUES
	('00000000-0000-0000-0000-0000000000b1', '00000000-0000-0000-0000-00000000000a', 'b1', '{"customer":"ACME"}'),
	('00000000-0000-0000-0000-0000000000b2', '00000000-0000-0000-0000-00000000000a', 'b2', NULL);
SELECT ac_try($$UPDATE automation_core.batch SET payload = '{}' WHERE id = '00000000-0000-0000-0000-0000000000b1'$$, true);

-- Item payloads
INSERT INTO automation_core.item (batch_id, sequence_number, payload) VALUES
	('00000000-0000-0000-0000-0000000000b1', 0, '{"sku":"ABC-0001","qty":2}'),
	('00000000-0000-0000-0000-0000000000b1', 1, '{"sku":"ABC-0002","qty":1,"note":"gift"}'),
	('00000000-0000-0000-0000-0000000000b1', 2, NULL);
SELECT ac_try($$INSERT INTO automation_core.item (id, batch_id, sequence_number, payload) VALUES
	('00000000-0000-0000-0000-0000000000c1', '00000000-0000-0000-0000-0000000000b1', 3,
	 '{"sku":"abc-1","qty":0,"colour":"red"}')$$, true);
SELECT ac_try($$UPDATE automation_core.item SET payload = '{"sku":"ABC-0001","qty":"2"}' WHERE batch_id = '00000000-0000-0000-0000-0000000000b1' AND sequence_number = 0$$, true);
-- a statement that does not touch the payload is not refused
UPDATE automation_core.item SET sequence_number = 10 WHERE batch_id = '00000000-0000-0000-0000-0000000000b1' AND sequence_number = 1;
SELECT sequence_number, payload FROM automation_core.item WHERE batch_id = '00000000-0000-0000-0000-0000000000b1' ORDER BY sequence_number;

-- A bulk insert validates every row; one bad row fails the statement
INSERT INTO automation_core.item (batch_id, sequence_number, payload)
SELECT '00000000-0000-0000-0000-0000000000b2', g,
	jsonb_build_object('sku', 'XYZ-' || lpad(g::text, 4, '0'), 'qty', g)
FROM generate_series(1, 1000) g;
SELECT ac_try($$INSERT INTO automation_core.item (batch_id, sequence_number, payload)
	SELECT '00000000-0000-0000-0000-0000000000b2', g, jsonb_build_object('sku', 'XYZ-0001', 'qty', 1000 - g)
	FROM generate_series(1001, 2000) g$$, true) LIKE '23514 item_payload_schema:%' AS bulk_refused;
SELECT count(*) FROM automation_core.item WHERE batch_id = '00000000-0000-0000-0000-0000000000b2';

-- Changing a schema is refused while an active payload would not satisfy it
SELECT ac_try($$UPDATE automation_core.automation SET item_schema = '{"properties":{"qty":{"maximum":999}}}' WHERE id = '00000000-0000-0000-0000-00000000000a'$$, true);
SELECT ac_try($$UPDATE automation_core.automation SET batch_schema = '{"properties":{"customer":{"maxLength":3}}}' WHERE id = '00000000-0000-0000-0000-00000000000a'$$, true);
-- ... and accepted once the offending payload is inactive
UPDATE automation_core.item SET is_active = false WHERE batch_id = '00000000-0000-0000-0000-0000000000b2' AND payload->>'qty' = '1000';
UPDATE automation_core.automation SET item_schema = '{"properties":{"qty":{"maximum":999}}}' WHERE id = '00000000-0000-0000-0000-00000000000a';
-- reactivating it validates it again
SELECT ac_try($$UPDATE automation_core.item SET is_active = true WHERE batch_id = '00000000-0000-0000-0000-0000000000b2' AND payload->>'qty' = '1000'$$, true);
-- the same transaction sees its own schema change at once
BEGIN;
UPDATE automation_core.automation SET item_schema = '{"properties":{"qty":{"maximum":5000}}}' WHERE id = '00000000-0000-0000-0000-00000000000a';
UPDATE automation_core.item SET is_active = true WHERE batch_id = '00000000-0000-0000-0000-0000000000b2' AND payload->>'qty' = '1000';
UPDATE automation_core.automation SET item_schema = '{"required":["sku"]}' WHERE id = '00000000-0000-0000-0000-00000000000a';
SELECT ac_try($$INSERT INTO automation_core.item (batch_id, sequence_number, payload) VALUES ('00000000-0000-0000-0000-0000000000b2', 5000, '{"qty":1}')$$, true);
COMMIT;
-- ... also inside one statement (a DO block, a function): a schema set,
-- removed, or taken back by a subtransaction's rollback counts from the
-- next row on
UPDATE automation_core.automation SET item_schema = '{"required":["sku"]}' WHERE id = '00000000-0000-0000-0000-00000000000a';
SELECT ac_try($try$DO $$
BEGIN
	BEGIN
		UPDATE automation_core.automation SET item_schema = NULL WHERE id = '00000000-0000-0000-0000-00000000000a';
		INSERT INTO automation_core.item (batch_id, sequence_number, payload) VALUES ('00000000-0000-0000-0000-0000000000b2', 5100, '{}');
		RAISE EXCEPTION 'take it back';
	EXCEPTION WHEN raise_exception THEN NULL;
	END;
	-- the schema is {"required":["sku"]} again
	INSERT INTO automation_core.item (batch_id, sequence_number, payload) VALUES ('00000000-0000-0000-0000-0000000000b2', 5101, '{"no":"sku"}');
END $$$try$, true);
SELECT count(*) AS rolled_back_schema_let_in FROM automation_core.item WHERE sequence_number IN (5100, 5101);
DO $$
BEGIN
	INSERT INTO automation_core.item (batch_id, sequence_number, payload) VALUES ('00000000-0000-0000-0000-0000000000b2', 5102, '{"sku":"x"}');
	UPDATE automation_core.automation SET item_schema = NULL WHERE id = '00000000-0000-0000-0000-00000000000a';
	-- no schema now
	INSERT INTO automation_core.item (batch_id, sequence_number, payload) VALUES ('00000000-0000-0000-0000-0000000000b2', 5103, '{}');
END $$;
SELECT sequence_number FROM automation_core.item WHERE sequence_number IN (5102, 5103) ORDER BY 1;
DELETE FROM automation_core.item WHERE sequence_number IN (5102, 5103);
-- removing a schema accepts everything
UPDATE automation_core.automation SET item_schema = NULL WHERE id = '00000000-0000-0000-0000-00000000000a';
INSERT INTO automation_core.item (batch_id, sequence_number, payload) VALUES ('00000000-0000-0000-0000-0000000000b2', 5000, '[1,2,3]');

-- A batch moving to another automation must fit that automation's item_schema
INSERT INTO automation_core.automation (id, name, item_schema) VALUES
	('00000000-0000-0000-0000-00000000000b', 'ps_strict', '{"type":"object","required":["sku"]}');
SELECT ac_try($$UPDATE automation_core.batch SET automation_id = '00000000-0000-0000-0000-00000000000b' WHERE id = '00000000-0000-0000-0000-0000000000b2'$$, true);
UPDATE automation_core.item SET is_active = false WHERE batch_id = '00000000-0000-0000-0000-0000000000b2' AND sequence_number = 5000;
SELECT ac_try($$UPDATE automation_core.batch SET automation_id = '00000000-0000-0000-0000-00000000000b' WHERE id = '00000000-0000-0000-0000-0000000000b2'$$, true);

-- Replica mode (restore, logical replication) copies rows as they are
SET session_replication_role = replica;
INSERT INTO automation_core.item (batch_id, sequence_number, payload) VALUES ('00000000-0000-0000-0000-0000000000b2', 6000, '"no sku"');
RESET session_replication_role;

-- The trigger functions refuse to be called any other way
SELECT ac_try($$SELECT automation_core.payload_check()$$, true) LIKE '0A000 %' OR
	   ac_try($$SELECT automation_core.payload_check()$$, true) LIKE '39P01 %' AS not_callable;

DROP SCHEMA ps_test CASCADE;
DELETE FROM automation_core.automation WHERE id IN ('00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-00000000000b');
