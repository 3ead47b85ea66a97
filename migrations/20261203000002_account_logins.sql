-- Account logins (issue 22): argon2id password hashes outside the event log (owner:
-- app::accounts), when each password was set (accounts read model), and panel sessions that
-- belong to an account (a session opened with the master key has none).
create table account_passwords
(
    account_id text        primary key,
    hash       text        not null,
    set_at     timestamptz not null default now()
);

alter table accounts add column password_set_at timestamptz;

alter table admin_sessions add column account_id text;
create index admin_sessions_account_idx on admin_sessions (account_id) where account_id is not null;
