ALTER TABLE opaque_tokens DROP COLUMN act;
ALTER TABLE clients DROP COLUMN token_exchange;
