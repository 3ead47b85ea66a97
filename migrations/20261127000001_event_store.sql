-- The event store: postgres-es's `events` and `snapshots` tables, extended with a global order.
--
-- postgres-es names every column it reads and writes, so the extra columns below (filled by
-- defaults) are invisible to it. They give the log what postgres-es lacks: a commit-safe global
-- order that our own consumers read (see projections/src/event_log.rs).

create table events
(
    aggregate_type  text        not null,
    aggregate_id    text        not null,
    sequence        bigint      not null check (sequence >= 0),
    event_type      text        not null,
    event_version   text        not null,
    payload         json        not null,
    metadata        json        not null,
    -- Allocated at insert time, so positions are NOT in commit order; readers order by
    -- (tx_id, global_position) and stop below the oldest running transaction.
    global_position bigint      generated always as identity,
    tx_id           xid8        not null default pg_current_xact_id(),
    recorded_at     timestamptz not null default now(),
    primary key (aggregate_type, aggregate_id, sequence)
);

create unique index events_global_position_idx on events (global_position);
create index events_tx_order_idx on events (tx_id, global_position);

create table snapshots
(
    aggregate_type   text   not null,
    aggregate_id     text   not null,
    last_sequence    bigint not null check (last_sequence >= 0),
    current_snapshot bigint not null check (current_snapshot >= 0),
    payload          json   not null,
    primary key (aggregate_type, aggregate_id, last_sequence)
);

-- The log is an audit trail: nobody rewrites history, not even the application's own role.
create function events_refuse_change() returns trigger
    language plpgsql as
$$
begin
    raise exception 'the event log is append-only: % on events is refused', tg_op
        using errcode = 'SL001';
end;
$$;

create trigger events_append_only
    before update or delete on events
    for each row execute function events_refuse_change();

create trigger events_no_truncate
    before truncate on events
    for each statement execute function events_refuse_change();

-- Wake consumers when events commit (NOTIFY is delivered at commit, once per transaction
-- and channel). Consumers also poll, so a lost notification only delays them.
create function events_notify() returns trigger
    language plpgsql as
$$
begin
    perform pg_notify('saas_events', '');
    return null;
end;
$$;

create trigger events_notify_insert
    after insert on events
    for each statement execute function events_notify();

-- One row per consumer (projector or reactor). The row is locked while a batch is applied, so
-- two processes never apply the same batch; the checkpoint moves in the batch's transaction.
create table consumer_checkpoints
(
    consumer_name   text        primary key,
    last_tx_id      xid8        not null default '0',
    last_position   bigint      not null default 0,
    events_applied  bigint      not null default 0,
    updated_at      timestamptz not null default now()
);

-- Values that must be unique across aggregates (for example an organization's LiteLLM id).
-- cqrs-es cannot commit two aggregates atomically, so the claim is taken by a trigger inside
-- the very transaction that appends the event: a duplicate aborts the append, nothing is written.
create table unique_claim_rules
(
    event_type text not null,
    field      text not null,
    scope      text not null,
    action     text not null check (action in ('claim', 'release')),
    primary key (event_type, field, scope, action)
);

create table unique_claims
(
    scope        text        not null,
    value        text        not null,
    aggregate_id text        not null,
    claimed_at   timestamptz not null default now(),
    primary key (scope, value)
);

create function events_take_unique_claims() returns trigger
    language plpgsql as
$$
declare
    rule  record;
    val   text;
    owner text;
begin
    for rule in select * from unique_claim_rules r where r.event_type = new.event_type loop
        -- postgres-es stores events externally tagged: {"OrganizationCreated": {...}}
        val := new.payload -> new.event_type ->> rule.field;
        continue when val is null;
        if rule.action = 'release' then
            delete from unique_claims c
             where c.scope = rule.scope and c.value = val and c.aggregate_id = new.aggregate_id;
            continue;
        end if;
        begin
            insert into unique_claims (scope, value, aggregate_id)
            values (rule.scope, val, new.aggregate_id);
        exception when unique_violation then
            select c.aggregate_id into owner from unique_claims c
             where c.scope = rule.scope and c.value = val;
            if owner is distinct from new.aggregate_id then
                raise exception 'unique claim taken'
                    using errcode = 'SL409',
                          detail = rule.scope,
                          hint = coalesce(owner, '');
            end if;
        end;
    end loop;
    return new;
end;
$$;

create trigger events_unique_claims
    before insert on events
    for each row execute function events_take_unique_claims();
