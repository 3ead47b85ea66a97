-- Checking a million links is one scan; let PostgreSQL spread it over its parallel workers.
alter function event_hash(bytea, events) parallel safe;
