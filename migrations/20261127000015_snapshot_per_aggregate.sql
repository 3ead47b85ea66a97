-- One snapshot row per aggregate, as postgres-es always kept it (it updated the row in place);
-- saying so lets the write side upsert the snapshot in the statement that appends the events.
create unique index snapshots_one_per_aggregate on snapshots (aggregate_type, aggregate_id);
