-- Finds the events a request with a given Idempotency-Key wrote, to tell a request that
-- crashed before it committed (safe to run again) from one that committed but lost its answer.
create index events_idempotency_key_idx on events ((metadata ->> 'idempotency_key'))
    where (metadata ->> 'idempotency_key') is not null;
