-- admin API (issue 18): every change of a client's settings increments its revision, the
-- admin API's ETag; an update names the revision it read (If-Match) and applies only if
-- it is still current (optimistic concurrency, RFC 9110 §13.1.1).
ALTER TABLE clients ADD COLUMN revision BIGINT NOT NULL DEFAULT 1;
