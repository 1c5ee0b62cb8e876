# Dump a database using automation_core with pg_dump -Fc, restore it into
# a fresh database of a second, freshly initialized cluster with
# session_replication_role = replica, and check that every row of every
# table (history included) comes back unchanged, that the rules hold again
# afterwards, and that the history id sequence continues above the
# restored ids.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $origin = PostgreSQL::Test::Cluster->new('origin');
$origin->init;
$origin->start;
$origin->safe_psql('postgres', 'CREATE DATABASE app');
$origin->safe_psql('app', 'CREATE EXTENSION automation_core');

# Rows in every table, with item executions taken through several status
# changes so that history has rows of its own.
$origin->safe_psql('app', q{
	SET automation_core.actor = 'filler';
	INSERT INTO automation_core.automation (name, description, batch_schema, item_schema)
		VALUES ('dump me', 'an automation', '{"type": "object", "required": ["n"]}',
				'{"type": "object", "properties": {"item": {"type": "integer", "minimum": 1}}}');
	INSERT INTO automation_core.automation (name, is_active) VALUES ('dump me', false);
	INSERT INTO automation_core.batch (automation_id, name, payload)
		SELECT id, 'batch ' || n, jsonb_build_object('n', n)
		FROM automation_core.automation, generate_series(1, 2) n WHERE is_active;
	INSERT INTO automation_core.item (batch_id, sequence_number, payload)
		SELECT b.id, n, jsonb_build_object('item', n) FROM automation_core.batch b, generate_series(1, 3) n;
	INSERT INTO automation_core.run (automation_id, correlation_id)
		SELECT id, c FROM automation_core.automation, unnest('{r1,r2}'::text[]) c WHERE is_active;
	INSERT INTO automation_core.batch_execution (run_id, batch_id)
		SELECT r.id, b.id FROM automation_core.run r JOIN automation_core.batch b USING (automation_id);
	INSERT INTO automation_core.item_execution (run_id, batch_execution_id, item_id, max_attempts)
		SELECT be.run_id, be.id, i.id, 3 FROM automation_core.batch_execution be
		JOIN automation_core.item i ON i.batch_id = be.batch_id;
	-- run r1: every item processed, one retried, one failed
	UPDATE automation_core.item_execution SET status = 'processing'
		WHERE run_id = (SELECT id FROM automation_core.run WHERE correlation_id = 'r1');
	UPDATE automation_core.item_execution ie SET status = 'retrying', error_message = 'flaky'
		FROM automation_core.item i
		WHERE i.id = ie.item_id AND i.sequence_number = 1
		  AND ie.run_id = (SELECT id FROM automation_core.run WHERE correlation_id = 'r1');
	UPDATE automation_core.item_execution SET status = 'processing' WHERE status = 'retrying';
	UPDATE automation_core.item_execution ie SET status = 'failed', error_message = 'broken'
		FROM automation_core.item i
		WHERE i.id = ie.item_id AND i.sequence_number = 2
		  AND ie.run_id = (SELECT id FROM automation_core.run WHERE correlation_id = 'r1');
	UPDATE automation_core.item_execution SET status = 'completed', result_payload = '{"ok": true}'
		WHERE status = 'processing'
		  AND run_id = (SELECT id FROM automation_core.run WHERE correlation_id = 'r1');
	-- run r2: left in flight, one item processing
	UPDATE automation_core.item_execution ie SET status = 'processing', worker = 'w9'
		FROM automation_core.item i
		WHERE i.id = ie.item_id AND i.sequence_number = 3
		  AND ie.run_id = (SELECT id FROM automation_core.run WHERE correlation_id = 'r2');
	INSERT INTO automation_core.engine (name, type) VALUES ('engine', 'workflow');
	INSERT INTO automation_core.orchestration_instance (engine_id, external_id, instance_metadata)
		SELECT id, x, '{"m": 1}' FROM automation_core.engine, unnest('{x1,x2}'::text[]) x;
	UPDATE automation_core.orchestration_instance SET status = 'processing';
	UPDATE automation_core.orchestration_instance SET status = 'completed' WHERE external_id = 'x1';
	INSERT INTO automation_core.run_orchestration (run_id, orchestration_instance_id)
		SELECT r.id, o.id FROM automation_core.run r, automation_core.orchestration_instance o;
});

# Every table of the extension, each as sorted text rows.
sub tables
{
	my ($node) = @_;
	return split /\n/, $node->safe_psql('app', q{
		SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'automation_core' AND c.relkind = 'r' ORDER BY 1});
}

sub table_rows
{
	my ($node, $table) = @_;
	return $node->safe_psql('app',
		"SELECT t::text FROM automation_core.$table t ORDER BY 1");
}

my @tables = tables($origin);
cmp_ok(scalar(@tables), '>=', 10, 'the extension has its tables');
for my $t (qw(automation batch item run batch_execution item_execution
	item_state_history engine orchestration_instance run_orchestration))
{
	my $n = $origin->safe_psql('app', "SELECT count(*) FROM automation_core.$t");
	cmp_ok($n, '>', 0, "$t has rows before the dump");
}
my $history_before = $origin->safe_psql('app',
	"SELECT count(*) FROM automation_core.item_state_history WHERE previous_status IS NOT NULL");
cmp_ok($history_before, '>=', 10, 'status changes wrote history');

my $dump = $PostgreSQL::Test::Utils::tmp_check . '/app.dump';
$origin->command_ok(
	[ 'pg_dump', '-Fc', '-f', $dump, '-d', $origin->connstr('app') ],
	'pg_dump -Fc');

# A second cluster, initialized from scratch.
my $restored = PostgreSQL::Test::Cluster->new('restored');
$restored->init;
$restored->start;
$restored->safe_psql('postgres', 'CREATE DATABASE app');
{
	local $ENV{PGOPTIONS} = '-c session_replication_role=replica';
	$restored->command_ok(
		[ 'pg_restore', '--exit-on-error', '-d', $restored->connstr('app'), $dump ],
		'pg_restore with session_replication_role = replica');
}

is_deeply([ tables($restored) ], \@tables, 'the same tables');
for my $t (@tables)
{
	is(table_rows($restored, $t), table_rows($origin, $t),
		"$t restored row for row");
}

# The rules hold in the restored database.
my ($ret, $out, $err) = $restored->psql('app', q{
	UPDATE automation_core.item_execution SET status = 'processing'
	WHERE status = 'completed'});
isnt($ret, 0, 'a bad transition is refused after the restore');
like($err, qr/can no longer change/, '... by the state machine');

($ret, $out, $err) = $restored->psql('app',
	'DELETE FROM automation_core.item_state_history');
isnt($ret, 0, 'history is append-only after the restore');
like($err, qr/append-only/, '... by the history guard');

($ret, $out, $err) = $restored->psql('app', q{
	INSERT INTO automation_core.automation (name) VALUES ('   ')});
like($err, qr/must not be empty/, 'names are checked after the restore');

# New history continues above the restored ids.
my $max_before = $restored->safe_psql('app',
	'SELECT max(id) FROM automation_core.item_state_history');
$restored->safe_psql('app', q{
	SET automation_core.actor = 'after-restore';
	UPDATE automation_core.item_execution SET status = 'completed'
	WHERE status = 'processing'});
my $new = $restored->safe_psql('app', qq{
	SELECT count(*) || ' ' || bool_and(id > $max_before) || ' ' || string_agg(previous_status || '>' || new_status, ',' ORDER BY id)
	FROM automation_core.item_state_history WHERE created_by = 'after-restore'});
is($new, '2 true processing>completed,processing>completed', 'the history id sequence continues above the restored ids');

# The roll-up works on the restored rows: the run r2 is still open, its
# other items pending; cancelling it ends everything.
$restored->safe_psql('app', q{
	UPDATE automation_core.run SET status = 'cancelled' WHERE correlation_id = 'r2'});
is( $restored->safe_psql('app', q{
		SELECT string_agg(DISTINCT status::text, ',') FROM automation_core.item_execution
		WHERE run_id = (SELECT id FROM automation_core.run WHERE correlation_id = 'r2')}),
	'cancelled,completed',
	'cancelling a restored run cascades');

$origin->stop;
$restored->stop;
done_testing();
