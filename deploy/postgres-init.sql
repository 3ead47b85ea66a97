-- LiteLLM keeps its own database; saas-api's is created by the image (POSTGRES_DB=saas).
create database litellm;
