-- SPDX-License-Identifier: Apache-2.0
-- Retry scheduling of the dead-letter handler. next_attempt_ms is when a
-- pending row is published back to its original topic (NULL: not
-- scheduled), so a restart resumes each retry at its due time.
ALTER TABLE dlq_errors ADD COLUMN next_attempt_ms bigint;

-- Serves the handler's scan for scheduled rows, ordered by due time.
CREATE INDEX dlq_errors_due ON dlq_errors (status, next_attempt_ms)
    WHERE next_attempt_ms IS NOT NULL;

-- Serves `sluice dlq list --topic` and GET /api/v1/dlq?topic=, newest first.
CREATE INDEX dlq_errors_topic ON dlq_errors (source_topic, id);
