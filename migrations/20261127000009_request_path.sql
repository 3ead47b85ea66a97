-- The request path: team-key cache invalidation, budget holds, jobs.

-- Every team event names its team on a channel of its own, delivered at commit, so each
-- saas-api process drops that team's cached key at once (rotate, suspend, delete, ...). A model
-- group change (which changes teams' allowed models) is announced as `ModelGroup`.
create function events_notify_team() returns trigger
    language plpgsql as
$$
begin
    perform pg_notify('saas_team_changed',
        case when new.aggregate_type = 'Team' then new.aggregate_id else 'ModelGroup' end
        || ' ' || new.global_position);
    return null;
end;
$$;

create trigger events_notify_team
    after insert on events
    for each row
    when (new.aggregate_type in ('Team', 'ModelGroup'))
    execute function events_notify_team();

-- Budget holds (hard mode). `team_budgets.held` is what in-flight and just-settled requests
-- hold: the gateway adds a request's worst case before forwarding it (one UPDATE whose WHERE
-- checks credits - spend - held on the row it locks), swaps it for the real price when it
-- records the usage (in the same statement), and the budgets projector subtracts that price
-- when it adds it to `spend` (`released_hold` in the usage record). `budget_holds` lists
-- unsettled holds so a crashed request's hold lapses at `expires_at`.
alter table team_budgets add column held numeric not null default 0;

create table budget_holds
(
    request_key text        primary key,
    team_id     text        not null,
    amount      numeric     not null,
    created_at  timestamptz not null default now(),
    expires_at  timestamptz not null
);

create index budget_holds_expiry_idx on budget_holds (expires_at);

-- Jobs (the `jobs` projector): state from Job events, call totals from usage records that
-- carry the job id.
create table jobs
(
    job_id            text        primary key,
    team_id           text        not null,
    job_type          text        not null,
    status            text        not null,
    metadata          jsonb       not null,
    result            jsonb,
    error             text,
    created_at        timestamptz not null,
    ended_at          timestamptz,
    calls             bigint      not null default 0,
    failed_calls      bigint      not null default 0,
    prompt_tokens     bigint      not null default 0,
    completion_tokens bigint      not null default 0,
    provider_cost     numeric     not null default 0,
    price             numeric     not null default 0,
    last_call_at      timestamptz,
    created_position  bigint      not null
);

create index jobs_team_idx on jobs (team_id, created_position);

-- Threshold-alert webhooks: one URL per organization, its signing secret encrypted like virtual
-- keys (outside the log), and an outbox of deliveries filled exactly once by the
-- `alert_webhooks` consumer and drained, with retries, by the dispatcher.
create table organization_webhooks
(
    organization_id text        primary key,
    url             text        not null,
    nonce           bytea       not null,
    secret          bytea       not null,
    updated_at      timestamptz not null default now()
);

create table webhook_deliveries
(
    delivery_id     text        primary key,
    organization_id text        not null,
    team_id         text        not null,
    event_type      text        not null,
    payload         jsonb       not null,
    status          text        not null check (status in ('pending', 'delivered', 'dead', 'no_webhook')),
    attempts        integer     not null default 0,
    last_status     integer,
    last_error      text,
    next_attempt_at timestamptz not null default now(),
    lease_until     timestamptz,
    created_at      timestamptz not null default now(),
    delivered_at    timestamptz,
    position        bigint      not null
);

create index webhook_deliveries_due_idx on webhook_deliveries (next_attempt_at) where status = 'pending';
create index webhook_deliveries_org_idx on webhook_deliveries (organization_id, created_at);
