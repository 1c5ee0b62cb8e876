# Stress: eight concurrent workers drain a run of 3,000 items (three
# batches, three attempts each), claiming one to five items at a time and
# failing one in five. Afterwards every item, batch execution and the run
# must have ended exactly once, consistently with the item history. Then
# the same for a run that a meddler changes by hand while it drains.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use AcWorkload;
use File::Temp;
use IPC::Run;

my $node = PostgreSQL::Test::Cluster->new('stress');
$node->init;
$node->append_conf('postgresql.conf', qq{
fsync = off
max_connections = 40
log_min_messages = warning
track_commit_timestamp = on
});
$node->start;

my $run = AcWorkload::setup_run($node, 3, 1000, 3);
is($node->safe_psql('postgres', qq{
	SELECT status || ' ' || count(*) FROM automation_core.item_execution
	WHERE run_id = '$run' GROUP BY status}),
	'pending 3000', 'the run starts with 3,000 pending item executions');

my $t0 = time();
my $rounds = AcWorkload::drain($node, $run, 8, 75);
note sprintf('drained in %d rounds, %d s', $rounds, time() - $t0);

# the workers did retry: some items needed more than one attempt
cmp_ok($node->safe_psql('postgres', qq{
	SELECT count(*) FROM automation_core.item_execution
	WHERE run_id = '$run' AND attempt_count > 1}), '>', 0,
	'some items were retried');
# and more than one worker took part
cmp_ok($node->safe_psql('postgres', qq{
	SELECT count(DISTINCT worker) FROM automation_core.item_execution
	WHERE run_id = '$run'}), '>', 1, 'several workers claimed items');

AcWorkload::check_finished_run($node, $run, 'stress');

# Work added and removed by hand while the workers run: a meddler adds
# item executions to the batch execution closest to its end, deletes
# pending ones from it and tries to end it by hand, racing the workers that
# finish its last items. An addition to a batch execution that has ended
# must be refused (55000), a deletion must leave what remains to roll up,
# an end by hand while an item is open must be refused (23514), and no
# snapshot may ever show an open item execution in a batch execution that
# has ended.
my $run2 = $node->safe_psql('postgres', q{
	INSERT INTO automation_core.automation (name) VALUES ('meddled');
	INSERT INTO automation_core.batch (automation_id, name)
	SELECT a.id, 'm-' || b FROM automation_core.automation a, generate_series(1, 30) b
	WHERE a.name = 'meddled' ORDER BY b;
	INSERT INTO automation_core.item (batch_id, sequence_number)
	SELECT b.id, i FROM automation_core.batch b JOIN automation_core.automation a ON a.id = b.automation_id,
		generate_series(0, 299) i WHERE a.name = 'meddled';
	SELECT id FROM automation_core.start_run(
		(SELECT id FROM automation_core.automation WHERE name = 'meddled'), 'meddled', 3);
});
$node->safe_psql('postgres', q{
	-- spare items, not in the run: what the meddler adds
	INSERT INTO automation_core.item (batch_id, sequence_number)
	SELECT b.id, i FROM automation_core.batch b JOIN automation_core.automation a ON a.id = b.automation_id,
		generate_series(300, 339) i WHERE a.name = 'meddled';
	-- the open batch execution of the run with the fewest open (or, with
	-- pending_only, pending) items
	CREATE FUNCTION closest_to_end(run uuid, pending_only boolean) RETURNS uuid LANGUAGE sql AS $$
		SELECT be.id FROM automation_core.batch_execution be
		JOIN automation_core.item_execution ie ON ie.batch_execution_id = be.id
		WHERE be.run_id = run AND NOT automation_core.is_terminal(be.status)
		  AND NOT automation_core.is_terminal(ie.status)
		  AND (NOT pending_only OR ie.status = 'pending')
		GROUP BY be.id ORDER BY count(*), random() LIMIT 1
	$$;
	CREATE FUNCTION meddle_add(run uuid) RETURNS text LANGUAGE plpgsql AS $$
	DECLARE
		be uuid := closest_to_end(run, false);
		n integer;
	BEGIN
		INSERT INTO automation_core.item_execution (run_id, batch_execution_id, item_id, max_attempts)
		SELECT run, be, i.id, 3 FROM automation_core.item i
		WHERE i.batch_id = (SELECT batch_id FROM automation_core.batch_execution WHERE id = be)
		  AND NOT EXISTS (SELECT 1 FROM automation_core.item_execution x
						  WHERE x.run_id = run AND x.item_id = i.id)
		ORDER BY i.sequence_number LIMIT 1
		ON CONFLICT (run_id, item_id) DO NOTHING;	-- the other meddler was faster
		GET DIAGNOSTICS n = ROW_COUNT;
		RETURN CASE WHEN n = 1 THEN 'added' ELSE 'no spare item' END;
	EXCEPTION WHEN object_not_in_prerequisite_state THEN
		RETURN 'refused';
	END
	$$;
	CREATE FUNCTION meddle_end(run uuid) RETURNS text LANGUAGE plpgsql AS $$
	DECLARE
		n integer;
	BEGIN
		UPDATE automation_core.batch_execution SET status = 'completed'
		WHERE id = closest_to_end(run, false) AND status = 'processing';
		GET DIAGNOSTICS n = ROW_COUNT;
		RETURN CASE WHEN n = 1 THEN 'ended by hand' ELSE 'nothing to end' END;
	EXCEPTION WHEN check_violation THEN
		RETURN 'end refused';
	END
	$$;
	CREATE TABLE meddle_log (what text NOT NULL);
});
my ($mfh, $meddle_script) = File::Temp::tempfile('ac_meddle_XXXX', SUFFIX => '.sql', TMPDIR => 1, UNLINK => 1);
print $mfh <<'SQL';
INSERT INTO meddle_log SELECT meddle_add(:run::uuid);
WITH d AS (DELETE FROM automation_core.item_execution
	WHERE id = (SELECT id FROM automation_core.item_execution
				WHERE batch_execution_id = (SELECT closest_to_end(:run::uuid, true)) AND status = 'pending'
				ORDER BY random() LIMIT 1)
	  AND status = 'pending' RETURNING 1)
INSERT INTO meddle_log SELECT 'deleted' FROM d;
INSERT INTO meddle_log SELECT meddle_end(:run::uuid);
SELECT 1 / (NOT EXISTS (SELECT 1 FROM automation_core.item_execution ie
	JOIN automation_core.batch_execution be ON be.id = ie.batch_execution_id
	WHERE be.run_id = :run::uuid AND automation_core.is_terminal(be.status)
	  AND NOT automation_core.is_terminal(ie.status)))::int AS no_open_item_in_an_ended_batch;
SQL
close $mfh;
my ($mout, $merr) = ('', '');
my $meddler = IPC::Run::start(
	['pgbench', '-n', '-M', 'prepared', '-c', 2, '-j', 2, '-T', 4, '-D', "run=$run2",
	 '-f', $meddle_script, '-h', $node->host, '-p', $node->port, 'postgres'],
	'>', \$mout, '2>', \$merr);
# the workers start once the meddler has added and deleted something, so
# that however slow the machine, the two overlap
$node->poll_query_until('postgres', q{
	SELECT count(DISTINCT what) = 2 FROM meddle_log WHERE what IN ('added', 'deleted')})
  or die 'the meddler did not start';
$rounds = AcWorkload::drain($node, $run2, 6, 75);
my $meddled = $meddler->finish;
note 'meddler: ' . join(' ', grep { /processed|failed|latency average/ } split /\n/, $mout);
ok($meddled, 'the meddler ran without error: never an open item in an ended batch execution')
  or diag "exit status " . $meddler->full_result . "\n$merr";
AcWorkload::drain($node, $run2, 6, 75);
note 'meddler: ' . $node->safe_psql('postgres',
	q{SELECT string_agg(what || ' ' || n, ', ') FROM (SELECT what, count(*) n FROM meddle_log GROUP BY what) x});
cmp_ok($node->safe_psql('postgres', q{SELECT count(*) FROM meddle_log WHERE what = 'added'}), '>', 0,
	'the meddler added item executions');
cmp_ok($node->safe_psql('postgres', q{SELECT count(*) FROM meddle_log WHERE what = 'deleted'}), '>', 0,
	'the meddler deleted item executions');
cmp_ok($node->safe_psql('postgres', q{SELECT count(*) FROM meddle_log WHERE what = 'end refused'}), '>', 0,
	'the meddler was refused ending batch executions with open items');
AcWorkload::check_finished_run($node, $run2, 'meddled');

# Plain DML over the items of many batch executions at once (an operator's
# bulk change): the roll-up of 100 batch executions in one statement must
# neither fail nor leave any of them behind.
my $bulk = $node->safe_psql('postgres', q{
	INSERT INTO automation_core.automation (name) VALUES ('bulk');
	INSERT INTO automation_core.batch (automation_id, name)
	SELECT a.id, 'bulk-' || b FROM automation_core.automation a, generate_series(1, 100) b
	WHERE a.name = 'bulk';
	INSERT INTO automation_core.item (batch_id, sequence_number)
	SELECT b.id, i FROM automation_core.batch b JOIN automation_core.automation a ON a.id = b.automation_id,
		generate_series(0, 1) i WHERE a.name = 'bulk';
	SELECT id FROM automation_core.start_run(
		(SELECT id FROM automation_core.automation WHERE name = 'bulk'));
});
foreach my $step (['processing', 'starts'], ['completed', 'completes'])
{
	my ($status, $verb) = @$step;
	my ($rc, $out, $err) = $node->psql('postgres', qq{
		UPDATE automation_core.item_execution SET status = '$status' WHERE run_id = '$bulk'});
	is($err, '', "one UPDATE $verb items of 100 batch executions");
	is($node->safe_psql('postgres', qq{
		SELECT string_agg(DISTINCT status::text, ',') || ' ' || count(*)
		FROM automation_core.batch_execution WHERE run_id = '$bulk'}),
		"$status 100", "all 100 batch executions are $status");
}
is($node->safe_psql('postgres', qq{SELECT status FROM automation_core.run WHERE id = '$bulk'}),
	'completed', 'the run completed');

$node->stop;
done_testing();
