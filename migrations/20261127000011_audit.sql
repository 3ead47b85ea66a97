-- Audit and as-of queries find a team's usage records in the log itself.
create index events_usage_team_idx on events ((payload -> 'UsageRecorded' ->> 'team_id'), recorded_at)
    where aggregate_type = 'Usage';
