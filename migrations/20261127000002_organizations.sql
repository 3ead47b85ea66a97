-- Organizations read model, written only by the `organizations` projector.
create table organizations
(
    organization_id         text        primary key,
    name                    text        not null,
    litellm_organization_id text,
    created_at              timestamptz not null,
    updated_at              timestamptz not null,
    created_by              text        not null,
    -- Global position of the event that created / last changed the row: the list cursor, and
    -- the guard that makes re-applying an event a no-op.
    created_position        bigint      not null,
    last_position           bigint      not null
);

create index organizations_created_position_idx on organizations (created_position);

insert into unique_claim_rules (event_type, field, scope, action)
values ('OrganizationCreated', 'litellm_organization_id', 'organization.litellm_organization_id', 'claim');
