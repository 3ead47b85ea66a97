-- The team-change signal names what changed in a form no id can take: `team <position> <id>`
-- or `groups <position>` (ids cannot hold spaces). The old payload put the team id first and
-- used the word `ModelGroup` for "every team", so a team named `ModelGroup` collided with it.
create or replace function events_notify_team() returns trigger
    language plpgsql as
$$
begin
    perform pg_notify('saas_team_changed',
        case when new.aggregate_type = 'Team'
             then 'team ' || new.global_position || ' ' || new.aggregate_id
             else 'groups ' || new.global_position end);
    return null;
end;
$$;
