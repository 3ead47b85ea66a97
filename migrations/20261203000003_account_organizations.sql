-- Organization-scoped accounts (issue 22): the organizations an account's role holds for;
-- null is every organization. Written by the `accounts` projector.
alter table accounts add column organizations text[];
