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

$node->stop;
done_testing();
