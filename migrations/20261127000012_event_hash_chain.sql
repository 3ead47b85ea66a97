-- Tamper evidence, in two layers (docs/ARCHITECTURE.md, "Tamper evidence").
--
-- 1. Every event carries `hash` = SHA-256(previous event's hash in its stream || its content,
--    position and time), set by a trigger however the row is inserted. Editing, deleting or
--    reordering an event breaks its stream's chain, unless the editor also recomputes hashes,
--    which anyone with database access can do. Hence:
-- 2. `event_seals`: a consumer walks the log in its global order and seals each batch with an
--    HMAC (keyed by a secret derived from ENCRYPTION_KEY, which the database never sees) over
--    the previous seal and the batch's hashes and positions. Recomputed hashes do not match the
--    seals, and seals cannot be forged without the key.

create function event_hash(prev bytea, e events) returns bytea
    language sql immutable as
$$
select sha256(coalesce(prev, ''::bytea) || convert_to(concat_ws(E'\x1f',
    e.aggregate_type, e.aggregate_id, e.sequence::text, e.event_type, e.event_version,
    e.payload::text, e.metadata::text, e.global_position::text,
    (extract(epoch from e.recorded_at) * 1000000)::bigint::text), 'UTF8'))
$$;

alter table events add column hash bytea;

create function events_set_hash() returns trigger
    language plpgsql as
$$
declare
    prev bytea;
begin
    if new.sequence > 1 then
        select hash into prev from events
         where aggregate_type = new.aggregate_type and aggregate_id = new.aggregate_id
           and sequence = new.sequence - 1;
    end if;
    new.hash := event_hash(prev, new);
    return new;
end;
$$;

-- Events already in the log get their chain now, stream by stream in sequence order.
alter table events disable trigger events_append_only;
do
$$
declare
    e events;
    prev bytea;
begin
    for e in select * from events order by aggregate_type, aggregate_id, sequence
        loop
            if e.sequence <= 1 then prev := null; end if;
            prev := event_hash(prev, e);
            update events set hash = prev
             where aggregate_type = e.aggregate_type and aggregate_id = e.aggregate_id
               and sequence = e.sequence;
        end loop;
end;
$$;
alter table events enable trigger events_append_only;

alter table events alter column hash set not null;

create trigger events_hash_chain
    before insert on events
    for each row execute function events_set_hash();

create table event_seals
(
    seal_id       bigint generated always as identity primary key,
    from_tx_id    xid8        not null,
    from_position bigint      not null,
    to_tx_id      xid8        not null,
    to_position   bigint      not null,
    event_count   integer     not null,
    mac           bytea       not null,
    sealed_at     timestamptz not null default now()
);

create trigger event_seals_append_only
    before update or delete on event_seals
    for each row execute function events_refuse_change();
