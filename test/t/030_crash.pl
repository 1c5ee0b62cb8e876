# Crash recovery: the server is killed (SIGKILL to the postmaster) while
# eight workers are claiming, completing and failing items. After the
# restart nothing is lost: every item is terminal or can be claimed again
# once expire_leases has taken back the leases of the dead workers, history
# agrees with every status, and workers then finish the run correctly.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

use AcWorkload;

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
$node->append_conf('postgresql.conf', qq{
max_connections = 40
log_min_messages = warning
track_commit_timestamp = on
restart_after_crash = on
});
$node->start;

my $run = AcWorkload::setup_run($node, 3, 1000, 3);

# The last 50 items of the queue wait, inactive (not claimable), until
# after the crash: on a fast machine the workers could otherwise end the
# whole run between the poll below and the kill.
$node->safe_psql('postgres', qq{
	UPDATE automation_core.item_execution SET is_active = false
	WHERE run_id = '$run' AND queue_position IN
		(SELECT queue_position FROM automation_core.item_execution
		 WHERE run_id = '$run' ORDER BY queue_position DESC LIMIT 50)});

# Workers with a long lease: after the crash nothing but expire_leases can
# give their items back.
my $script = AcWorkload::worker_script();
my ($out, $err) = ('', '');
my $bench = IPC::Run::start(
	AcWorkload::pgbench_cmd($node, $script, 8, seconds => 120, lease => '1 hour'),
	'>', \$out, '2>', \$err);

# kill the server once the workers are well under way
ok($node->poll_query_until('postgres', qq{
	SELECT count(*) >= 600 FROM automation_core.item_execution
	WHERE run_id = '$run' AND status IN ('completed', 'failed')}),
	'workers finished some items');
my ($postmaster) = split /\n/, slurp_file($node->data_dir . '/postmaster.pid');
$node->kill9;
$bench->finish;
note 'pgbench after the crash: exit ' . ($? >> 8);

# The orphaned backends leave on noticing that the postmaster died; until
# the postmaster is gone and they have left, a new postmaster refuses to
# start. Wait, then try until it starts.
foreach my $try (1 .. 300)
{
	last unless kill(0, $postmaster);
	usleep(100_000);
}
my $started = 0;
foreach my $try (1 .. 300)
{
	last if ($started = $node->start(fail_ok => 1));
	usleep(100_000);
}
ok($started, 'the server restarts after the crash');

my $q = sub { $node->safe_psql('postgres', shift) };
is($q->(qq{WITH u AS (UPDATE automation_core.item_execution SET is_active = true
		WHERE run_id = '$run' AND NOT is_active RETURNING 1) SELECT count(*) FROM u}), 50,
	'the items held back are claimable again');

is($q->(qq{SELECT count(*) FROM automation_core.item_execution WHERE run_id = '$run'}),
	3000, 'no item execution was lost');
cmp_ok($q->(qq{SELECT count(*) FROM automation_core.item_execution
		WHERE run_id = '$run' AND NOT automation_core.is_terminal(status)}),
	'>', 0, 'the crash came before the run ended');

AcWorkload::check_history($node, $run, 'after the crash');
is($q->(qq{SELECT count(*) FROM automation_core.batch_execution be
		WHERE be.run_id = '$run' AND automation_core.is_terminal(be.status) IS DISTINCT FROM
			NOT EXISTS (SELECT 1 FROM automation_core.item_execution ie
						WHERE ie.batch_execution_id = be.id
						AND NOT automation_core.is_terminal(ie.status))}),
	0, 'after the crash a batch execution has ended exactly when all its items have');

# The dead workers' items are still processing under an hour-long lease.
my $processing = $q->(qq{SELECT count(*) FROM automation_core.item_execution
	WHERE run_id = '$run' AND status = 'processing'});
note "$processing item executions were held by workers at the crash";
is($q->(qq{BEGIN;
		CREATE TEMP TABLE held AS SELECT id FROM automation_core.item_execution
			WHERE run_id = '$run' AND status = 'processing';
		SELECT count(*) FROM automation_core.claim('$run', 'probe', 100000) c
			JOIN held USING (id);
		ROLLBACK;}), 0, 'items held at the crash are not claimable before their lease ends');

# End the leases and take the items back.
is(AcWorkload::recover_abandoned($node), $processing,
	'expire_leases takes back every item held at the crash');
is($q->(qq{SELECT count(*) FROM automation_core.item_execution
		WHERE run_id = '$run' AND status = 'processing'}), 0, 'no item is processing');

# Everything not terminal can now be claimed (checked in a transaction
# that is rolled back).
is($q->(qq{BEGIN;
		SELECT count(*) FROM automation_core.claim('$run', 'probe', 100000);
		ROLLBACK;}),
	$q->(qq{SELECT count(*) FROM automation_core.item_execution
		WHERE run_id = '$run' AND NOT automation_core.is_terminal(status)}),
	'every item that is not terminal is claimable again');

AcWorkload::drain($node, $run, 8, 60);
AcWorkload::check_finished_run($node, $run, 'after crash');

$node->stop;
done_testing();
