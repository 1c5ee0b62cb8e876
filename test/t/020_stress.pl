# Stress: eight concurrent workers drain a run of 3,000 items (three
# batches, three attempts each), claiming one to five items at a time and
# failing one in five. Afterwards every item, batch execution and the run
# must have ended exactly once, consistently with the item history.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use AcWorkload;

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
