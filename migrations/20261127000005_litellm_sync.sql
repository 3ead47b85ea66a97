-- LiteLLM sync: which teams LiteLLM must be brought in line with, and how that is going.
-- Written by the `litellm_sync_marker` projector (marks teams dirty) and the reconciler.
create table litellm_sync
(
    team_id          text        primary key,
    -- Position of the newest event that changed what LiteLLM should hold for the team.
    wanted_position  bigint      not null,
    -- Position whose state LiteLLM was last brought to.
    synced_position  bigint,
    status           text        not null check (status in ('pending', 'in_sync', 'failing')),
    attempts         integer     not null default 0,
    last_error       text,
    next_attempt_at  timestamptz not null default now(),
    -- A reconciler leases a team while it talks to LiteLLM, without holding a transaction open
    -- (an open transaction would hold back every consumer's xmin horizon).
    lease_owner      text,
    lease_until      timestamptz,
    updated_at       timestamptz not null default now()
);

create index litellm_sync_due_idx on litellm_sync (next_attempt_at) where status <> 'in_sync';

-- Old keys already removed from LiteLLM after a rotation.
alter table virtual_keys add column litellm_removed_at timestamptz;
