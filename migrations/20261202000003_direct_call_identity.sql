-- A direct call's usage record is known by LiteLLM's request id (the provider's response id)
-- together with a digest of its call id, so two calls a provider gave the same response id
-- are two records. Rows of calls that started before this migration keep the identity they
-- were recorded under (the response id alone): re-reading LiteLLM's spend logs across the
-- upgrade bills nothing twice. One row; written only here; read by app::usage::ledger.
create table usage_identity_cutover
(
    singleton boolean primary key default true check (singleton),
    combined_from timestamptz not null
);
insert into usage_identity_cutover (combined_from) values (now());
