-- Wake-ups name the aggregate types a statement appended, so that each consumer wakes only for
-- events it reads (usage arriving at a thousand per second no longer wakes the organizations
-- projector). PostgreSQL folds identical notifications of one transaction into one.
create or replace function events_notify_types() returns trigger
    language plpgsql as
$$
begin
    perform pg_notify('saas_events', coalesce(string_agg(distinct aggregate_type, ','), ''))
       from inserted;
    return null;
end;
$$;

drop trigger events_notify_insert on events;

create trigger events_notify_insert
    after insert on events
    referencing new table as inserted
    for each statement execute function events_notify_types();

drop function events_notify();
