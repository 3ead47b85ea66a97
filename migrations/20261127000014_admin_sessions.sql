-- Admin panel sessions: operational state (who is logged in), not part of the record, so they
-- live beside the read models, not in the event log. Only a digest of the session token is kept:
-- a copy of this table lets no one in.
create table admin_sessions
(
    token_digest bytea       primary key,
    csrf_token   text        not null,
    actor        text        not null,
    created_at   timestamptz not null default now(),
    last_seen_at timestamptz not null default now(),
    expires_at   timestamptz not null
);

create index admin_sessions_expiry_idx on admin_sessions (expires_at);
