-- Whether a group's model names were checked against LiteLLM's catalog.
alter table model_groups add column verified boolean not null default false;
