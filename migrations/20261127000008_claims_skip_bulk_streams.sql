-- Usage records and threshold alerts are single-event streams appended in bulk and never take
-- unique claims; skipping the per-row claims function for them takes about 40% off their insert.
drop trigger events_unique_claims on events;

create trigger events_unique_claims
    before insert on events
    for each row
    when (new.aggregate_type not in ('Usage', 'BudgetAlert'))
    execute function events_take_unique_claims();
