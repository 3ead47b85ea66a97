-- Usage: the usage projector's copy of every UsageRecorded event, daily roll-ups for fast
-- reports, the budget projector's per-team budget and threshold alerts, and the durable cursor
-- of spend ingestion from LiteLLM.

create table usage_records
(
    request_id        text        primary key,
    team_id           text        not null,
    organization_id   text        not null,
    key_fingerprint   text,
    model             text        not null,
    provider_model    text,
    prompt_tokens     bigint      not null,
    completion_tokens bigint      not null,
    cached_tokens     bigint      not null,
    provider_cost     numeric     not null,
    price             numeric     not null,
    status            text        not null,
    latency_ms        bigint,
    occurred_at       timestamptz not null,
    job_id            text,
    source            text        not null,
    position          bigint      not null
);

create index usage_records_team_time_idx on usage_records (team_id, occurred_at);
create index usage_records_org_time_idx on usage_records (organization_id, occurred_at);
create index usage_records_time_idx on usage_records (occurred_at);

-- Per team, UTC day and model: what reports sum for whole days.
create table usage_daily
(
    team_id           text    not null,
    day               date    not null,
    model             text    not null,
    organization_id   text    not null,
    requests          bigint  not null,
    failed_requests   bigint  not null,
    prompt_tokens     bigint  not null,
    completion_tokens bigint  not null,
    cached_tokens     bigint  not null,
    provider_cost     numeric not null,
    price             numeric not null,
    primary key (team_id, day, model)
);

create index usage_daily_org_idx on usage_daily (organization_id, day);
create index usage_daily_day_idx on usage_daily (day);

create table team_budgets
(
    team_id          text        primary key,
    organization_id  text        not null,
    credits          numeric     not null,
    spend            numeric     not null default 0,
    budget_mode      text        not null,
    credit_level     bigint      not null default 0,
    alerted_percent  integer     not null default 0,
    request_count    bigint      not null default 0,
    last_usage_at    timestamptz,
    deleted          boolean     not null default false,
    last_position    bigint      not null
);

create table budget_alerts
(
    team_id           text        not null,
    credit_level      bigint      not null,
    threshold_percent integer     not null,
    credits           numeric     not null,
    spend             numeric     not null,
    request_id        text,
    crossed_at        timestamptz not null,
    position          bigint      not null,
    primary key (team_id, credit_level, threshold_percent)
);

create index budget_alerts_position_idx on budget_alerts (position);

-- Where spend ingestion from LiteLLM has read up to. Rows are re-read from `watermark` minus an
-- overlap on every pass and deduplicated by request id, so late rows are still caught.
create table spend_ingest_cursors
(
    source          text        primary key,
    watermark       timestamptz not null,
    lease_owner     text,
    lease_until     timestamptz,
    last_run_at     timestamptz,
    last_success_at timestamptz,
    last_error      text,
    rows_seen       bigint      not null default 0,
    recorded        bigint      not null default 0,
    not_ours        bigint      not null default 0,
    invalid         bigint      not null default 0
);

-- Spend now lives in team_budgets (the budget projector); the teams column was never written.
alter table teams drop column spend;
