-- Read models for model groups and teams (written only by their projectors), plus two tables
-- that live outside the event log on purpose: encrypted virtual keys and idempotency records.

alter table organizations add column deleted_at timestamptz;

create table model_groups
(
    group_name       text        primary key,
    description      text,
    models           text[]      not null,
    created_at       timestamptz not null,
    updated_at       timestamptz not null,
    deleted_at       timestamptz,
    created_position bigint      not null,
    last_position    bigint      not null
);

create table teams
(
    team_id          text        primary key,
    organization_id  text        not null,
    team_alias       text        not null,
    model_groups     text[]      not null,
    credits          numeric     not null,
    spend            numeric     not null default 0,
    budget_mode      text        not null,
    rpm_limit        bigint,
    tpm_limit        bigint,
    markup_percent   numeric     not null,
    status           text        not null,
    key_fingerprint  text        not null,
    keys_revealed    bigint      not null default 0,
    created_at       timestamptz not null,
    updated_at       timestamptz not null,
    created_by       text        not null,
    created_position bigint      not null,
    last_position    bigint      not null
);

create index teams_organization_idx on teams (organization_id, created_position);
create index teams_created_position_idx on teams (created_position);
create index teams_model_groups_idx on teams using gin (model_groups);

-- Virtual keys, AES-256-GCM encrypted with ENCRYPTION_KEY. Secrets never enter the event log
-- (it is immutable and replayed for audits); events carry only the fingerprint. `key_hash`
-- (SHA-256) serves key lookups without decrypting.
create table virtual_keys
(
    fingerprint text        primary key,
    team_id     text        not null,
    key_hash    bytea       not null unique,
    nonce       bytea       not null,
    ciphertext  bytea       not null,
    created_at  timestamptz not null default now()
);

create index virtual_keys_team_idx on virtual_keys (team_id);

-- Idempotency-Key records (Stripe's rules). Responses are stored encrypted because some carry
-- a virtual key. Kept at least 24 hours.
create table idempotency_keys
(
    actor         text        not null,
    key           text        not null,
    request_hash  bytea       not null,
    status        smallint,
    nonce         bytea,
    response      bytea,
    created_at    timestamptz not null default now(),
    primary key (actor, key)
);

create index idempotency_keys_created_idx on idempotency_keys (created_at);
