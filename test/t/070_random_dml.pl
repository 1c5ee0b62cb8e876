# Random statements against the rules: thousands of random UPDATEs,
# INSERTs and DELETEs of item executions, batch executions and runs, with
# random statuses, by hand and through the functions, in one session and
# then in three at once. Most are refused; whatever is accepted, the rules
# must hold afterwards (and along the way, in the single session): every
# item's last history row is its status, nothing open inside something
# ended, nothing ended with everything inside it still open, no attempt
# beyond the limit, timestamps as the state machine sets them, nothing
# started inside something pending. The seeds are fixed; AC_DML_SEED
# picks others.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $seed = $ENV{AC_DML_SEED} // 7;
my $node = PostgreSQL::Test::Cluster->new('random_dml');
$node->init;
$node->append_conf('postgresql.conf', qq{
fsync = off
log_min_messages = warning
deadlock_timeout = 50ms
});
$node->start;

my @status = qw(pending processing retrying completed failed cancelled);
my $IE = '(SELECT id FROM automation_core.item_execution ORDER BY random() LIMIT 1)';
my $BE = '(SELECT id FROM automation_core.batch_execution ORDER BY random() LIMIT 1)';
my $RUN = '(SELECT id FROM automation_core.run ORDER BY random() LIMIT 1)';
my $PROCESSING = "(SELECT id FROM automation_core.item_execution WHERE status = 'processing' ORDER BY random() LIMIT 1)";

sub pick { return $_[ int(rand(@_)) ]; }
sub st { return pick(@status); }

# One random statement (or a short transaction of two).
sub statement
{
	my $r = rand();
	return "UPDATE automation_core.item_execution SET status = '" . st() . "' WHERE id = $IE;" if $r < 0.25;
	return "UPDATE automation_core.item_execution SET status = '" . st() . "' WHERE batch_execution_id = $BE;" if $r < 0.30;
	return "UPDATE automation_core.batch_execution SET status = '" . st() . "' WHERE id = $BE;" if $r < 0.35;
	return "UPDATE automation_core.run SET status = '" . st() . "' WHERE id = $RUN;" if $r < 0.39;
	return "DELETE FROM automation_core.item_execution WHERE id = $IE;" if $r < 0.42;
	return "DELETE FROM automation_core.batch_execution WHERE id = $BE;" if $r < 0.43;
	return "INSERT INTO automation_core.item_execution (run_id, batch_execution_id, item_id, max_attempts) "
	  . "SELECT be.run_id, be.id, i.id, " . pick('NULL', 1, 2, 3) . " FROM automation_core.batch_execution be "
	  . "JOIN automation_core.item i ON i.batch_id = be.batch_id WHERE NOT EXISTS (SELECT 1 FROM "
	  . "automation_core.item_execution x WHERE x.run_id = be.run_id AND x.item_id = i.id) ORDER BY random() LIMIT 1;"
	  if $r < 0.47;
	return "SELECT 1 FROM automation_core.start_run((SELECT id FROM automation_core.automation ORDER BY random() LIMIT 1), NULL, "
	  . pick('NULL', 2, 3) . ");" if $r < 0.50;
	return "SELECT count(*) FROM automation_core.claim(NULL, 'w', " . pick(1, 1, 2, 5) . ");" if $r < 0.60;
	return "SELECT 1 FROM automation_core.complete($PROCESSING);" if $r < 0.68;
	return "SELECT 1 FROM automation_core.fail($PROCESSING, 'boom', true, interval '0 seconds');" if $r < 0.74;
	return "SELECT 1 FROM automation_core.cancel_run($RUN, 'stop');" if $r < 0.76;
	return "SELECT automation_core.expire_leases();" if $r < 0.78;
	return "UPDATE automation_core.item_execution SET lease_expires_at = now() - interval '1 hour' WHERE id = $IE;" if $r < 0.80;
	return "UPDATE automation_core.item_execution SET max_attempts = " . pick('NULL', 1, 2, 5) . " WHERE id = $IE;" if $r < 0.83;
	return "UPDATE automation_core.item_execution SET attempt_count = " . int(rand(6)) . " WHERE id = $IE;" if $r < 0.85;
	return "UPDATE automation_core.item_execution SET is_active = " . pick('true', 'false') . " WHERE id = $IE;" if $r < 0.87;
	return "SELECT count(*) FROM automation_core.complete_many(ARRAY(SELECT id FROM automation_core.item_execution "
	  . "WHERE status = 'processing' ORDER BY random() LIMIT 3), NULL, NULL);" if $r < 0.89;
	return "UPDATE automation_core.item_execution SET started_at = now() WHERE id = $IE;" if $r < 0.91;
	return "SELECT 1 FROM automation_core.heartbeat($PROCESSING, 1);" if $r < 0.93;
	return "BEGIN; SAVEPOINT s; UPDATE automation_core.item_execution SET status = '" . st() . "' WHERE id = $IE; "
	  . "ROLLBACK TO SAVEPOINT s; UPDATE automation_core.item_execution SET status = '" . st() . "' WHERE id = $IE; COMMIT;"
	  if $r < 0.96;
	return "BEGIN; UPDATE automation_core.item_execution SET status = '" . st() . "' WHERE batch_execution_id = $BE; "
	  . "UPDATE automation_core.batch_execution SET status = '" . st() . "' WHERE id = $BE; COMMIT;";
}

# Every rule as a count of the rows breaking it.
my $CHECK = q{
SELECT string_agg(broken || ' ' || n, ', ') FROM (
SELECT 'history' AS broken, count(*) AS n FROM automation_core.item_execution ie
WHERE ie.status IS DISTINCT FROM (SELECT new_status FROM automation_core.item_state_history h
	WHERE h.item_execution_id = ie.id ORDER BY id DESC LIMIT 1)
UNION ALL
SELECT 'open item in ended batch execution', count(*) FROM automation_core.item_execution ie
JOIN automation_core.batch_execution be ON be.id = ie.batch_execution_id
WHERE ie.status IN ('pending', 'processing', 'retrying') AND be.status IN ('completed', 'failed', 'cancelled')
UNION ALL
SELECT 'open batch execution in ended run', count(*) FROM automation_core.batch_execution be
JOIN automation_core.run r ON r.id = be.run_id
WHERE be.status IN ('pending', 'processing') AND r.status IN ('completed', 'failed', 'cancelled')
UNION ALL
SELECT 'batch execution open with every item ended', count(*) FROM automation_core.batch_execution be
WHERE be.status IN ('pending', 'processing')
	AND EXISTS (SELECT 1 FROM automation_core.item_execution ie WHERE ie.batch_execution_id = be.id)
	AND NOT EXISTS (SELECT 1 FROM automation_core.item_execution ie WHERE ie.batch_execution_id = be.id
		AND ie.status IN ('pending', 'processing', 'retrying'))
UNION ALL
SELECT 'run open with every batch execution ended', count(*) FROM automation_core.run r
WHERE r.status IN ('pending', 'processing')
	AND EXISTS (SELECT 1 FROM automation_core.batch_execution be WHERE be.run_id = r.id)
	AND NOT EXISTS (SELECT 1 FROM automation_core.batch_execution be WHERE be.run_id = r.id
		AND be.status IN ('pending', 'processing'))
UNION ALL
SELECT 'attempts beyond the limit', count(*) FROM automation_core.item_execution
WHERE max_attempts IS NOT NULL AND attempt_count > max_attempts
UNION ALL
SELECT 'timestamps', count(*) FROM automation_core.item_execution
WHERE (status = 'processing' AND started_at IS NULL)
	OR (status IN ('completed', 'failed', 'cancelled') AND finished_at IS NULL)
	OR (status = 'pending' AND (started_at IS NOT NULL OR finished_at IS NOT NULL))
UNION ALL
SELECT 'item started in a pending batch execution', count(*) FROM automation_core.item_execution ie
JOIN automation_core.batch_execution be ON be.id = ie.batch_execution_id
WHERE ie.status IN ('processing', 'retrying', 'completed', 'failed') AND be.status = 'pending'
UNION ALL
SELECT 'batch execution started in a pending run', count(*) FROM automation_core.batch_execution be
JOIN automation_core.run r ON r.id = be.run_id
WHERE be.status <> 'pending' AND be.status <> 'cancelled' AND r.status = 'pending'
) c WHERE n > 0
};

sub fresh_database
{
	my ($db) = @_;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, q{
		SET client_min_messages = warning;
		CREATE EXTENSION automation_core;
		INSERT INTO automation_core.automation (name) SELECT 'a' || g FROM generate_series(1, 2) g;
		INSERT INTO automation_core.batch (automation_id, name)
		SELECT a.id, 'b' || g FROM automation_core.automation a, generate_series(1, 3) g;
		INSERT INTO automation_core.item (batch_id, sequence_number)
		SELECT b.id, g FROM automation_core.batch b, generate_series(0, 4) g;
		SELECT count(automation_core.start_run(id, NULL, 3)) FROM automation_core.automation;
	});
}

# One session: 4,000 statements, the rules checked after every 200.
srand($seed);
fresh_database('single');
my $script = "SET client_min_messages = error;\n";
for my $i (1 .. 4000)
{
	$script .= statement() . "\n";
	$script .= "SELECT 'checked after $i: ' || coalesce(($CHECK), 'ok');\n" if $i % 200 == 0;
}
my ($out, $err) = ('', '');
$node->psql('single', $script, stdout => \$out, stderr => \$err, on_error_stop => 0);
my @checks = grep { /^checked after/ } split /\n/, $out;
is(scalar(@checks), 20, 'one session: the rules were checked 20 times');
is(join("\n", grep { !/: ok$/ } @checks), '', 'one session: every rule holds after every 200 statements');
my $runs = $node->safe_psql('single', 'SELECT count(*) FROM automation_core.run');
cmp_ok($runs, '>', 50, "one session: runs were started ($runs)");
my $accepted = $node->safe_psql('single',
	"SELECT count(*) FROM automation_core.item_state_history WHERE new_status IN ('completed', 'failed', 'cancelled')");
cmp_ok($accepted, '>', 100, "one session: items were ended ($accepted)");

# Three sessions at once on one database: deadlocks and serialization
# failures may abort some statements, never break a rule.
fresh_database('three');
my @procs;
for my $s (1 .. 3)
{
	srand($seed * 10 + $s);
	my $sql = "SET client_min_messages = error;\n";
	$sql .= statement() . "\n" for 1 .. 3000;
	my ($o, $e) = ('', '');
	push @procs, [
		IPC::Run::start(
			[ 'psql', '-X', '-q', '-h', $node->host, '-p', $node->port, 'three' ],
			'<', \$sql, '>', \$o, '2>', \$e),
		\$o, \$e ];
}
$_->[0]->finish for @procs;
is($node->safe_psql('three', "SELECT coalesce(($CHECK), '')"), '',
	'three sessions: every rule holds');
my $errors = join('', map { ${ $_->[2] } } @procs);
unlike($errors, qr/server closed the connection|terminated abnormally/,
	'three sessions: no backend was lost');
note 'deadlocks: ' . (() = $errors =~ /deadlock detected/g);

$node->stop;
done_testing();
