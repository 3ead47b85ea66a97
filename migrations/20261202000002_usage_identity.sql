-- A usage record's identity is its team and request id together (stream `<team_id>:<request_id>`):
-- a provider that reuses response ids (or two providers that happen to agree) no longer hides
-- one team's call behind another's.

-- The read model is keyed the same way.
alter table usage_records drop constraint usage_records_pkey;
alter table usage_records add primary key (team_id, request_id);

-- Whether the log holds usage streams named by request id alone (written before this
-- migration). The ledger then also looks there, so re-reading LiteLLM's spend logs across the
-- upgrade does not bill a call twice. One row or none; written only here.
create table usage_identity_legacy
(
    present boolean primary key
);
insert into usage_identity_legacy
select true where exists (select 1 from events where aggregate_type = 'Usage');
