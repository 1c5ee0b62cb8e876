# Consumer positions survive pg_dump / pg_restore into a fresh cluster whose
# transaction ids start far lower: the event rows, the id sequence and the
# positions come through, new events get larger ids and a new epoch, and a
# consumer registered before the dump receives every event written after
# the restore.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# The old cluster runs with transaction ids in xid epoch 3 (above 3 * 2^32),
# far beyond where a freshly initialized cluster starts.
my $old = PostgreSQL::Test::Cluster->new('old');
$old->init;
command_ok([ 'pg_resetwal', '-e', '3', $old->data_dir ], 'old cluster moved to xid epoch 3');
$old->start;
$old->safe_psql('postgres', 'CREATE DATABASE app');

my $work = q{
	CREATE FUNCTION public.step(tag text) RETURNS void LANGUAGE plpgsql AS $$
	BEGIN
		INSERT INTO automation_core.orchestration_instance (engine_id, external_id)
			SELECT e.id, tag FROM automation_core.engine e WHERE e.name = 'restore';
		UPDATE automation_core.orchestration_instance SET status = 'processing' WHERE external_id = tag;
	END $$;
};
$old->safe_psql('app', qq{
	CREATE EXTENSION automation_core;
	INSERT INTO automation_core.engine (name, type) VALUES ('restore', 'test');
	$work
});
$old->safe_psql('app', q{
	SELECT automation_core.register_consumer('before');
	SELECT automation_core.register_consumer('replay', true);
});
$old->safe_psql('app', "SELECT public.step('e$_')") for 1 .. 3;

# 'before' reads and acknowledges e1 and e2, leaves e3
my $got = $old->safe_psql('app', q{
	SELECT string_agg(o.external_id, ',' ORDER BY e.epoch, e.txid, e.id)
	  FROM automation_core.next_events('before', 2) e
	  JOIN automation_core.orchestration_instance o ON o.id = e.entity_id});
is($got, 'e1,e2', 'consumer reads the first two events before the dump');
$old->safe_psql('app', q{
	SELECT automation_core.ack_events('before',
		(SELECT max(id) FROM automation_core.next_events('before', 2)))});
my $old_max_id = $old->safe_psql('app', 'SELECT max(id) FROM automation_core.event');
my $old_txid = $old->safe_psql('app', 'SELECT max(txid) FROM automation_core.event');
cmp_ok($old_txid, '>', 3 * 2**32, 'old events carry high transaction ids');

my $dump = $old->basedir . '/app.dump';
$old->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $old->connstr('app') ], 'pg_dump');
$old->stop;

# A fresh cluster; restore with the triggers silent
my $new = PostgreSQL::Test::Cluster->new('new');
$new->init;
$new->start;
$new->safe_psql('postgres', 'CREATE DATABASE app');
{
	local $ENV{PGOPTIONS} = '-c session_replication_role=replica';
	$new->command_ok([ 'pg_restore', '--exit-on-error', '-d', $new->connstr('app'), $dump ],
		'pg_restore into a fresh cluster');
}

is($new->safe_psql('app', 'SELECT count(*) FROM automation_core.event'), '3',
	'the event rows came through');
is($new->safe_psql('app',
	"SELECT last_event_id > 0 FROM automation_core.consumer WHERE name = 'before'"), 't',
	'the consumer positions came through');
is($new->safe_psql('app', 'SELECT count(*) FROM automation_core.event_epoch'), '1',
	'the old cluster\'s epoch came through');

# New events after the restore
$new->safe_psql('app', "SELECT public.step('n$_')") for 1 .. 2;
my $new_min_id = $new->safe_psql('app',
	"SELECT min(id) FROM automation_core.event WHERE epoch = (SELECT max(epoch) FROM automation_core.event_epoch)");
cmp_ok($new_min_id, '>', $old_max_id, 'new events get larger ids than restored ones');
my $new_txid = $new->safe_psql('app',
	"SELECT max(txid) FROM automation_core.event WHERE epoch = automation_core.current_event_epoch()");
cmp_ok($new_txid, '<', $old_txid, 'the fresh cluster writes lower transaction ids');
is($new->safe_psql('app', 'SELECT automation_core.current_event_epoch()'), '2',
	'the fresh cluster writes under a new epoch');

my $read = q{
	SELECT string_agg(o.external_id || ':' || (e.payload->>'new_status'), ','
					  ORDER BY e.epoch, e.txid, e.id)
	  FROM automation_core.next_events('%s') e
	  JOIN automation_core.orchestration_instance o ON o.id = e.entity_id};
is($new->safe_psql('app', sprintf($read, 'before')), 'e3:processing,n1:processing,n2:processing',
	'the consumer gets the unacknowledged event and every event written after the restore');
is($new->safe_psql('app', sprintf($read, 'replay')),
	'e1:processing,e2:processing,e3:processing,n1:processing,n2:processing',
	'a consumer that acknowledged nothing replays everything, old epoch first');
$new->safe_psql('app', q{
	SELECT automation_core.ack_events('before',
		(SELECT max(id) FROM automation_core.next_events('before')))});
is($new->safe_psql('app', "SELECT count(*) FROM automation_core.next_events('before')"), '0',
	'after the ack nothing comes twice');
$new->safe_psql('app', "SELECT public.step('n3')");
is($new->safe_psql('app', sprintf($read, 'before')), 'n3:processing',
	'later events keep coming');

$new->stop;
done_testing();
