-- Operators' accounts (issue 22). The read models are written only by the `accounts`
-- projector; the key digests and last uses only by app::accounts, outside the event log: the
-- log is kept for ever and replayed for audits, so no secret or digest of one goes there.
create table accounts
(
    account_id       text        primary key,
    email            text        not null,
    display_name     text        not null,
    role             text        not null,
    disabled         boolean     not null default false,
    created_at       timestamptz not null,
    updated_at       timestamptz not null,
    created_by       text        not null,
    created_position bigint      not null,
    last_position    bigint      not null
);

create index accounts_created_position_idx on accounts (created_position);

create table account_api_keys
(
    key_id           text        primary key,
    account_id       text        not null,
    name             text        not null,
    role             text        not null,
    expires_at       timestamptz,
    revoked_at       timestamptz,
    created_at       timestamptz not null,
    created_by       text        not null,
    created_position bigint      not null,
    last_position    bigint      not null
);

create index account_api_keys_account_idx on account_api_keys (account_id, created_position);

-- SHA-256 of each key's secret (the keys are 32 random bytes: a digest is enough, a password
-- hash is for guessable secrets). Written once when the key is issued.
create table account_key_digests
(
    key_id     text        primary key,
    account_id text        not null,
    digest     bytea       not null,
    created_at timestamptz not null default now()
);

-- When each key was last used, written at most once a minute per key.
create table account_key_uses
(
    key_id       text        primary key,
    last_used_at timestamptz not null
);

-- One account per email, across accounts: claimed in the appending transaction.
insert into unique_claim_rules (event_type, field, scope, action)
values ('AccountCreated', 'email', 'account.email', 'claim');
