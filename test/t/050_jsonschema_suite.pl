# Runs the official JSON Schema test suite (draft 2020-12, required tests,
# not optional/) through automation_core.jsonschema_is_valid, and every
# schema of it through jsonschema_check. Prints a pass count per file and a
# total; fails unless every test passes, apart from the exceptions listed
# below with their reasons.
#
# The suite's files are loaded as json (not jsonb) and every schema and
# instance is cast to jsonb on its own, so a test jsonb cannot represent
# fails alone instead of taking its whole file with it.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $dir = $ENV{AC_SUITE_DIR} // './shared/jsonschema-test-suite/tests/draft2020-12';
my @files = sort glob("$dir/*.json");
# The suite lives next to the checkout (../shared). A checkout without it
# skips this file, except where AC_REQUIRE_SUITE says it must run (CI).
plan skip_all => "JSON Schema test suite not found in $dir"
  if !@files && !$ENV{AC_REQUIRE_SUITE};
ok(@files > 0, "suite files found in $dir") or BAIL_OUT("no suite files in $dir");

# Tests expected not to pass, as "file / group description / test
# description" (a "*" test matches every test of the group), with the reason.
my %exceptions;
my $remote = 'needs a remote document (remote references are not fetched; the schema is refused with 22023)';
my $nul = 'jsonb cannot hold the character U+0000 (run with U+2400 in its place)';
my $vocab = 'custom metaschemas and $vocabulary are not interpreted (only the draft 2020-12 metaschema is built in)';
$exceptions{"refRemote / $_ / *"} = $remote for (
	'remote ref',
	'fragment within remote ref',
	'anchor within remote ref',
	'ref within remote ref',
	'base URI change',
	'base URI change - change folder',
	'base URI change - change folder in subschema',
	'root ref in remote ref',
	'remote ref with ref to defs',
	'Location-independent identifier in remote ref',
	'retrieved nested refs resolve relative to their URI not $id',
	'remote HTTP ref with different $id',
	'remote HTTP ref with different URN $id',
	'remote HTTP ref with nested absolute ref',
	'$ref to $ref finds detached $anchor');
$exceptions{"dynamicRef / $_ / *"} = $remote for (
	'strict-tree schema, guards against misspelled properties',
	'tests for implementation dynamic anchor and reference link',
	'$ref and $dynamicAnchor are independent of order - $defs first',
	'$ref and $dynamicAnchor are independent of order - $ref first',
	'$ref to $dynamicRef finds detached $dynamicAnchor');
$exceptions{"vocabulary / schema that uses custom metaschema with with no validation vocabulary / *"} = $vocab;
$exceptions{"const / nul characters in strings / *"} = $nul;
$exceptions{"enum / nul characters in strings / *"} = $nul;

my $node = PostgreSQL::Test::Cluster->new('jsonschema_suite');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION automation_core');
$node->safe_psql('postgres', q{
CREATE TABLE suite (file text, doc json);
CREATE FUNCTION try_valid(s json, d json) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	RETURN automation_core.jsonschema_is_valid(s::jsonb, d::jsonb)::text;
EXCEPTION WHEN OTHERS THEN
	RETURN 'error ' || SQLSTATE || ': ' || SQLERRM;
END $$;
CREATE FUNCTION try_check(s json) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	RETURN automation_core.jsonschema_check(s::jsonb)::text;
EXCEPTION WHEN OTHERS THEN
	RETURN 'error ' || SQLSTATE || ': ' || SQLERRM;
END $$;
});

for my $f (@files)
{
	my ($name) = $f =~ m{([^/]+)\.json$};
	open(my $fh, '<', $f) or die "$f: $!";
	local $/;
	my $text = <$fh>;
	close($fh);
	# jsonb cannot hold U+0000, and json's operators refuse it too: the
	# tests that use it run with U+2400 (the symbol for NUL) in its place
	# and are listed as exceptions
	$text =~ s/\\u0000/\\u2400/g;
	my $tag = '$suite$';
	die "$f contains $tag" if index($text, $tag) >= 0;
	$node->safe_psql('postgres',
		"INSERT INTO suite VALUES ('$name', $tag$text$tag)");
}

my $rows = $node->safe_psql('postgres', q{
SELECT s.file, g.v->>'description', t.v->>'description', (t.v->'valid')::text,
	   try_valid(g.v->'schema', t.v->'data'),
	   CASE WHEN t.ord = 1 THEN try_check(g.v->'schema') ELSE '-' END
FROM suite s,
	 json_array_elements(s.doc) WITH ORDINALITY g(v, ord),
	 json_array_elements(g.v->'tests') WITH ORDINALITY t(v, ord)
ORDER BY s.file, g.ord, t.ord
}, extra_params => [ '-F', "\x1f", '-R', "\x1e" ]);

my (%pass, %total, %excepted, %used);
my ($pass, $total, $nexcepted, $unexpected) = (0, 0, 0, 0);
my ($checks, $checks_ok, $pass_rest) = (0, 0, 0);
for my $row (split /\x1e/, $rows)
{
	my ($file, $group, $test, $expected, $got, $check) = split /\x1f/, $row;
	my $key = "$file / $group / $test";
	my $reason = $exceptions{$key} // $exceptions{"$file / $group / *"};
	$used{ exists $exceptions{$key} ? $key : "$file / $group / *" } = 1
	  if defined $reason;
	my $ok = ($got eq $expected);

	$total{$file}++;
	$total++;
	if ($ok)
	{
		$pass{$file}++;
		$pass++;
	}
	if ($check ne '-')
	{
		# every schema of the suite is valid, unless it needs a remote
		# document (jsonschema_check answers false) or cannot be a jsonb
		my $check_ok = ($check eq 'true') || defined $reason;
		$checks++;
		$checks_ok++ if $check eq 'true';
		fail("jsonschema_check: $file / $group: $check") unless $check_ok;
	}
	if (defined $reason)
	{
		$nexcepted++;
		$excepted{$file}++;
		note("excepted ($reason): $key: expected $expected, got $got") unless $ok;
		next;
	}
	$pass_rest++ if $ok;
	unless ($ok)
	{
		$unexpected++;
		fail("$key: expected $expected, got $got");
	}
}

diag(sprintf("%-26s %6s %6s %9s", 'file', 'passed', 'tests', 'excepted'));
for my $file (sort keys %total)
{
	diag(sprintf("%-26s %6d %6d %9d", $file, $pass{$file} // 0, $total{$file},
			$excepted{$file} // 0));
}
diag(sprintf("total: %d of %d tests passed (%.1f%%); %d tests excepted; %d of %d schemas pass jsonschema_check",
		$pass, $total, 100.0 * $pass / $total, $nexcepted, $checks_ok, $checks));
diag(sprintf("tests jsonb can represent that need no remote document: %d of %d passed",
		$pass_rest, $total - $nexcepted));
is($unexpected, 0, 'every test passes except the listed exceptions');
is(join(', ', grep { !$used{$_} } sort keys %exceptions), '',
	'every listed exception names tests of the suite');

$node->stop;
done_testing();
