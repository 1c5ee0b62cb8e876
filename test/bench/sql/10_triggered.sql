-- Two transitions of one item execution through the extension's
-- triggers, each its own transaction, as a worker would: pending ->
-- processing (a claim) and processing -> completed.
UPDATE automation_core.item_execution SET status = 'processing'
	WHERE queue_position = (SELECT nextval('bench_floor.pick_triggered')) AND status = 'pending' RETURNING id \gset
UPDATE automation_core.item_execution SET status = 'completed', result_payload = '{"ok": true}'
	WHERE id = :id;
