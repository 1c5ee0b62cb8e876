-- The JSON Schema validator: jsonschema_is_valid, jsonschema_errors,
-- jsonschema_check, the keywords, the pattern dialect, references and
-- hostile schemas.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS automation_core;
CREATE SCHEMA js_test;
SET search_path = js_test, automation_core, public;

-- A table of (schema, instance, expected) cases
CREATE TABLE js_test.cases (id serial, what text, schema jsonb, instance jsonb, expected boolean);
INSERT INTO js_test.cases (what, schema, instance, expected) VALUES
	-- type
	('type integer accepts 1.0', '{"type":"integer"}', '1.0', true),
	('type integer refuses 1.5', '{"type":"integer"}', '1.5', false),
	('type list', '{"type":["string","null"]}', 'null', true),
	('type list refuses', '{"type":["string","null"]}', '1', false),
	('boolean schema true', 'true', '{"a":1}', true),
	('boolean schema false', 'false', '1', false),
	-- enum and const: JSON equality
	('enum numeric equality', '{"enum":[1, "a", {"x":[1,2]}]}', '1.0', true),
	('enum object equality', '{"enum":[1, "a", {"x":[1,2]}]}', '{"x":[1.0,2]}', true),
	('enum refuses', '{"enum":[1, "a"]}', '"b"', false),
	('const false is not 0', '{"const":false}', '0', false),
	-- numbers: exact arithmetic
	('multipleOf fractional', '{"multipleOf":0.1}', '0.3', true),
	('multipleOf fractional refuses', '{"multipleOf":0.1}', '0.35', false),
	('multipleOf huge', '{"multipleOf":7}', '700000000000000000000000000000000000000000000000007', true),
	('multipleOf huge refuses', '{"multipleOf":7}', '700000000000000000000000000000000000000000000000008', false),
	('multipleOf tiny', '{"multipleOf":1e-300}', '3e-299', true),
	('integer 1e308 multipleOf 0.123456789', '{"type":"integer","multipleOf":0.123456789}', '1e308', false),
	('minimum big', '{"minimum":1e400}', '1e401', true),
	('exclusiveMaximum', '{"exclusiveMaximum":3}', '3', false),
	('exclusiveMinimum at the bound', '{"exclusiveMinimum":5}', '5', false),
	('exclusiveMinimum at the bound, written 5.0', '{"exclusiveMinimum":5}', '5.0', false),
	('exclusiveMinimum just above', '{"exclusiveMinimum":5}', '5.0001', true),
	-- strings: code points
	('maxLength counts code points', '{"maxLength":2}', '"日本"', true),
	('minLength counts code points', '{"minLength":3}', '"😀😀"', false),
	-- arrays
	('uniqueItems 1 == 1.0', '{"uniqueItems":true}', '[1, 1.0]', false),
	('uniqueItems objects', '{"uniqueItems":true}', '[{"a":1,"b":2},{"b":2,"a":1}]', false),
	('uniqueItems distinct', '{"uniqueItems":true}', '[1, "1", [1], true]', true),
	('prefixItems and items', '{"prefixItems":[{"type":"string"}],"items":{"type":"integer"}}', '["a",1,2]', true),
	('prefixItems and items refuse', '{"prefixItems":[{"type":"string"}],"items":{"type":"integer"}}', '["a",1,"b"]', false),
	('contains with maxContains', '{"contains":{"const":1},"maxContains":1}', '[1,2,1]', false),
	('minContains 0', '{"contains":{"const":1},"minContains":0}', '[2]', true),
	('unevaluatedItems', '{"prefixItems":[true],"unevaluatedItems":false}', '[1,2]', false),
	-- objects
	('required', '{"required":["a","b"]}', '{"a":1}', false),
	('dependentRequired', '{"dependentRequired":{"a":["b"]}}', '{"a":1}', false),
	('dependentSchemas', '{"dependentSchemas":{"a":{"required":["c"]}}}', '{"a":1,"c":2}', true),
	('additionalProperties', '{"properties":{"a":true},"patternProperties":{"^x-":true},"additionalProperties":false}', '{"a":1,"x-b":2}', true),
	('additionalProperties refuses', '{"properties":{"a":true},"patternProperties":{"^x-":true},"additionalProperties":false}', '{"a":1,"b":2}', false),
	('propertyNames', '{"propertyNames":{"maxLength":2}}', '{"abc":1}', false),
	('unevaluatedProperties through allOf', '{"allOf":[{"properties":{"a":true}}],"unevaluatedProperties":false}', '{"a":1}', true),
	('unevaluatedProperties refuses', '{"allOf":[{"properties":{"a":true}}],"unevaluatedProperties":false}', '{"a":1,"b":2}', false),
	('min/maxProperties', '{"minProperties":1,"maxProperties":1}', '{}', false),
	-- applicators
	('oneOf two match', '{"oneOf":[{"type":"integer"},{"minimum":0}]}', '1', false),
	('anyOf', '{"anyOf":[{"type":"string"},{"minimum":0}]}', '-1', false),
	('not', '{"not":{"type":"string"}}', '1', true),
	('if/then/else', '{"if":{"type":"string"},"then":{"minLength":2},"else":{"minimum":5}}', '3', false),
	-- pattern: ECMA-262 with the u flag, unanchored
	('pattern unanchored', '{"pattern":"b"}', '"abc"', true),
	('pattern \d is ASCII only', '{"pattern":"^\\d+$"}', '"١٢٣"', false),
	('pattern \d digits', '{"pattern":"^\\d+$"}', '"123"', true),
	('pattern \w is ASCII only', '{"pattern":"^\\w+$"}', '"é"', false),
	('pattern \s includes NBSP', '{"pattern":"^\\s$"}', '"\u00a0"', true),
	('pattern \b', '{"pattern":"\\bcat\\b"}', '"a cat here"', true),
	('pattern group names are Unicode', '{"pattern":"^(?<é>a)(?<i>b)\\k<é>\\k<i>$"}', '"abab"', true),
	('pattern \b refuses', '{"pattern":"\\bcat\\b"}', '"concatenate"', false),
	('pattern dot is one code point', '{"pattern":"^.$"}', '"😀"', true),
	('pattern dot excludes newline', '{"pattern":"^.$"}', '"\n"', false),
	('pattern \p{L}', '{"pattern":"^\\p{L}+$"}', '"Ωmega"', true),
	('pattern \p{Letter} refuses digits', '{"pattern":"^\\p{Letter}+$"}', '"abc1"', false),
	('pattern \P{L}', '{"pattern":"^\\P{L}$"}', '"1"', true),
	('pattern Script=Greek', '{"pattern":"^\\p{Script=Greek}+$"}', '"αβγ"', true),
	('pattern Script=Greek refuses', '{"pattern":"^\\p{sc=Greek}+$"}', '"abc"', false),
	('pattern binary property and scx', '{"pattern":"^\\p{Alphabetic}+\\p{White_Space}\\p{scx=Hira}$"}', '"abc ぁ"', true),
	('pattern gc Lu refuses lower case', '{"pattern":"^\\p{Lu}$"}', '"a"', false),
	('pattern \u{...}', '{"pattern":"^\\u{1F600}$"}', '"😀"', true),
	('pattern lookahead', '{"pattern":"^(?=.*\\d)(?!.*x).{3}$"}', '"a1b"', true),
	('pattern backreference', '{"pattern":"^(\\w)\\1$"}', '"aa"', true),
	('pattern named backreference', '{"pattern":"^(?<c>\\w)\\k<c>$"}', '"ab"', false),
	('pattern counted repetition', '{"pattern":"^[0-9]{2,3}$"}', '"1234"', false),
	('pattern lazy', '{"pattern":"^a+?b$"}', '"aaab"', true),
	('pattern empty loop ends', '{"pattern":"^(a*)*$"}', '"aaaa"', true),
	-- references
	('$ref to $defs', '{"$defs":{"pos":{"minimum":0}},"$ref":"#/$defs/pos"}', '-1', false),
	('$ref with ~0 ~1 and percent-encoding', '{"$defs":{"a/b~c%":{"type":"string"}},"properties":{"x":{"$ref":"#/$defs/a~1b~0c%25"}}}', '{"x":1}', false),
	('$anchor', '{"$defs":{"s":{"$anchor":"str","type":"string"}},"$ref":"#str"}', '"x"', true),
	('relative $id', '{"$id":"http://example.com/root.json","$defs":{"x":{"$id":"item.json","type":"integer"}},"$ref":"item.json"}', '"x"', false),
	('recursive $ref', '{"type":"object","properties":{"child":{"$ref":"#"}},"additionalProperties":false}', '{"child":{"child":{"other":1}}}', false),
	('$dynamicRef extends a generic list', '{"$id":"https://example.com/strlist","$ref":"list","$defs":{"s":{"$dynamicAnchor":"item","type":"string"},"list":{"$id":"list","$defs":{"item":{"$dynamicAnchor":"item"}},"type":"array","items":{"$dynamicRef":"#item"}}}}', '["a"]', true),
	('$dynamicRef extends a generic list refuses', '{"$id":"https://example.com/strlist","$ref":"list","$defs":{"s":{"$dynamicAnchor":"item","type":"string"},"list":{"$id":"list","$defs":{"item":{"$dynamicAnchor":"item"}},"type":"array","items":{"$dynamicRef":"#item"}}}}', '["a",1]', false),
	('the generic list alone takes anything', '{"$ref":"https://example.com/list","$defs":{"list":{"$id":"https://example.com/list","$defs":{"item":{"$dynamicAnchor":"item"}},"type":"array","items":{"$dynamicRef":"#item"}}}}', '["a",1]', true),
	('metaschema $ref accepts a schema', '{"$ref":"https://json-schema.org/draft/2020-12/schema"}', '{"minLength":1}', true),
	('metaschema $ref refuses a bad schema', '{"$ref":"https://json-schema.org/draft/2020-12/schema"}', '{"minLength":-1}', false),
	-- format is an annotation
	('format is not asserted', '{"format":"email"}', '"not an email"', true),
	('unknown keywords are ignored', '{"x-anything":{"type":1}}', '1', true);

SELECT id, what, jsonschema_is_valid(schema, instance) AS valid
FROM js_test.cases
WHERE jsonschema_is_valid(schema, instance) IS DISTINCT FROM expected
ORDER BY id;
SELECT count(*) AS cases, count(*) FILTER (WHERE expected) AS valid_cases FROM js_test.cases;

-- The failures, with JSON pointers to the instance and the keyword
SELECT * FROM jsonschema_errors(
	'{"type":"object","required":["id","tags"],
	  "properties":{"id":{"type":"integer","minimum":1},
	                "tags":{"type":"array","items":{"type":"string","maxLength":3}},
	                "a/b":{"const":1}},
	  "additionalProperties":false}',
	'{"id":0,"tags":["ok","long",7],"a/b":2,"extra":true}')
ORDER BY instance_path, schema_path;
SELECT count(*) FROM jsonschema_errors('{"type":"object"}', '{}');
SELECT * FROM jsonschema_errors('false', '1');

-- jsonschema_check: false for an invalid schema, never an error
SELECT s AS schema, jsonschema_check(s::jsonb) FROM (VALUES
	('{"type":"object"}'), ('true'), ('1'), ('{"type":"integr"}'),
	('{"minLength":-1}'), ('{"minLength":1.5}'), ('{"required":["a","a"]}'),
	('{"pattern":"(unclosed"}'), ('{"pattern":"(?<=a)b"}'),
	('{"pattern":"\\p{NoSuchProperty}"}'), ('{"multipleOf":0}'),
	('{"$ref":"#/$defs/missing"}'), ('{"$ref":"https://example.com/remote.json"}'),
	('{"properties":{"a":1}}'), ('{"allOf":[]}'),
	('{"pattern":"a}"}'), ('{"pattern":"\\a"}'), ('{"pattern":"[\\d-z]"}')) v(s)
ORDER BY 1;

-- An invalid schema in jsonschema_is_valid raises 22023, with the reason
SELECT ac_try($$SELECT automation_core.jsonschema_is_valid('{"type":"integr"}', '1')$$, true);
SELECT ac_try($$SELECT automation_core.jsonschema_is_valid('{"$ref":"https://example.com/remote.json"}', '1')$$, true);
SELECT ac_try($$SELECT automation_core.jsonschema_is_valid('{"pattern":"a{2,1}"}', '"a"')$$, true);

-- Hostile schemas end in an error or a correct answer, never a crash
-- a reference loop without progress: the schema applies itself to the
-- same value without end, an invalid schema (22023) naming where, not a
-- stack overflow; recursion that moves into the value, or that anyOf cuts
-- short, is fine
SELECT ac_try($$SELECT automation_core.jsonschema_is_valid('{"$ref":"#"}', '1')$$, true);
SELECT ac_try($$SELECT automation_core.jsonschema_is_valid('{"$defs":{"a":{"$ref":"#/$defs/b"},"b":{"allOf":[{"$ref":"#/$defs/a"}]}},"$ref":"#/$defs/a"}', '{}')$$, true);
SELECT ac_try($$SELECT * FROM automation_core.jsonschema_errors('{"not":{"$dynamicRef":"#"}}', '[1]')$$, true);
SELECT jsonschema_is_valid('{"properties":{"a":{"$ref":"#"}},"items":{"$ref":"#"}}', '{"a":[{"a":[[]]}]}') AS moves_into_value;
SELECT jsonschema_is_valid('{"anyOf":[true,{"$ref":"#"}]}', '1') AS cut_short;
SELECT jsonschema_is_valid('{"propertyNames":{"$ref":"#"},"contains":{"$ref":"#"}}', '[{"a":1}]') AS names_and_elements;
-- deep nesting in the schema and in the instance
SELECT jsonschema_check((repeat('{"items":', 2000) || 'true' || repeat('}', 2000))::jsonb) AS deep_schema;
SELECT ac_try(format('SELECT automation_core.jsonschema_check(%L)',
	repeat('{"items":', 200000) || 'true' || repeat('}', 200000)), true) LIKE '54001 %' AS very_deep_schema_stops;
SELECT jsonschema_is_valid((repeat('{"items":', 500) || 'false' || repeat('}', 500))::jsonb,
	(repeat('[', 500) || repeat(']', 500))::jsonb) AS deep_nesting_valid;
SELECT jsonschema_is_valid((repeat('{"items":', 500) || 'false' || repeat('}', 500))::jsonb,
	(repeat('[', 501) || repeat(']', 501))::jsonb) AS deep_nesting_invalid;
-- catastrophic backtracking hits the step budget
SELECT ac_try($$SELECT automation_core.jsonschema_is_valid('{"pattern":"^(a+)+$"}', to_jsonb(repeat('a', 40) || 'b'))$$, true);
-- ... or statement_timeout, whichever comes first
SET statement_timeout = '50ms';
SELECT ac_try($$SELECT automation_core.jsonschema_is_valid('{"pattern":"^(a|a)*$"}', to_jsonb(repeat('a', 60) || 'b'))$$, true) ~ '^(54001|57014) ' AS regex_stops;
RESET statement_timeout;
-- a counted repetition too large to expand
SELECT jsonschema_check('{"pattern":"(a{1000}){1000}"}');
-- huge numbers
SELECT jsonschema_is_valid('{"multipleOf":1e-100}', '1e100') AS huge_multiple;
SELECT jsonschema_is_valid('{"maxLength":1e100,"minItems":1e50}', '"x"') AS huge_counts;
SELECT jsonschema_is_valid('{"minItems":1e50}', '[1]') AS huge_min_items;

-- uniqueItems on long arrays (sorted, not compared pairwise)
SELECT jsonschema_is_valid('{"uniqueItems":true}', (SELECT jsonb_agg(g) FROM generate_series(1, 100000) g)) AS long_unique;
SELECT jsonschema_is_valid('{"uniqueItems":true}', (SELECT jsonb_agg(g % 99999) FROM generate_series(1, 100000) g)) AS long_duplicate;
SELECT * FROM jsonschema_errors('{"uniqueItems":true}', '[{"a":[1,2]}, "x", 2, null, true, {"a":[1.0,2]}, 2.0]');

-- Compiled schemas are cached per backend: many rows, one schema
SELECT count(*) FILTER (WHERE jsonschema_is_valid('{"type":"object","properties":{"n":{"type":"integer","multipleOf":2}}}', jsonb_build_object('n', g))) AS even
FROM generate_series(1, 1000) g;
-- more distinct schemas than the cache holds still validate correctly
SELECT count(*) FILTER (WHERE jsonschema_is_valid(jsonb_build_object('const', g % 50), to_jsonb(g % 50))) AS all_valid
FROM generate_series(1, 200) g;

DROP SCHEMA js_test CASCADE;
