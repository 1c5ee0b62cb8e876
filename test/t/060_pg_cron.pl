# expire_leases run on a schedule by pg_cron, as doc/api.md describes:
# a lease that ends is taken back without anyone calling expire_leases by
# hand. Skipped when pg_cron is not installed next to the server.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('cron');
my $libdir = $node->config_data('--pkglibdir');
plan skip_all => "pg_cron is not installed in $libdir"
  unless -f "$libdir/pg_cron.so";

$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_cron'
cron.database_name = 'postgres'
cron.use_background_workers = on
max_worker_processes = 16
log_min_messages = warning
});
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_cron;
	CREATE EXTENSION automation_core;
	INSERT INTO automation_core.automation (name) VALUES ('cron');
	INSERT INTO automation_core.batch (automation_id, name)
	SELECT id, 'only' FROM automation_core.automation;
	INSERT INTO automation_core.item (batch_id, sequence_number)
	SELECT id, n FROM automation_core.batch, generate_series(0, 1) n;
});
my $run = $node->safe_psql('postgres', q{
	SELECT id FROM automation_core.start_run(
		(SELECT id FROM automation_core.automation), NULL, 3)});

# pg_cron 1.5 and later take an interval in seconds; older versions run
# jobs at most once a minute.
my ($rc, $job, $err) = $node->psql('postgres', q{
	SELECT cron.schedule('automation-core-expire-leases', '1 seconds',
						 $$SELECT automation_core.expire_leases()$$)});
if ($rc != 0)
{
	note "pg_cron takes no seconds ($err); scheduling every minute";
	$job = $node->safe_psql('postgres', q{
		SELECT cron.schedule('automation-core-expire-leases', '* * * * *',
							 $$SELECT automation_core.expire_leases()$$)});
}
like($job, qr/^\d+$/, 'expire_leases is scheduled');

# A worker claims an item with a one-second lease and disappears.
my $item = $node->safe_psql('postgres', qq{
	SELECT id FROM automation_core.claim('$run', 'vanished', 1, '1 second')});
is($node->safe_psql('postgres', qq{
	SELECT status || ' ' || attempt_count FROM automation_core.item_execution WHERE id = '$item'}),
	'processing 1', 'the item is processing');

ok($node->poll_query_until('postgres', qq{
	SELECT status = 'retrying' AND error_message = 'lease expired'
	FROM automation_core.item_execution WHERE id = '$item'}),
	'the scheduled expire_leases took the item back');
is($node->safe_psql('postgres', qq{
	SELECT count(*) > 0 FROM cron.job_run_details
	WHERE jobid = $job AND status = 'succeeded'}),
	't', 'pg_cron recorded a successful run of the job');
is($node->safe_psql('postgres', qq{
	SELECT status || ' ' || attempt_count FROM automation_core.item_execution
	WHERE run_id = '$run' AND id <> '$item'}),
	'pending 0', 'the other item was left alone');

$node->safe_psql('postgres', q{SELECT cron.unschedule('automation-core-expire-leases')});
$node->stop;
done_testing();
