-- SPDX-License-Identifier: Apache-2.0
-- The store gives a schema registered under several subjects one id, as
-- Confluent's registry does. id was UNIQUE, and now (subject, id) is, so
-- one subject still has an id at most once. Existing rows keep their ids.
-- normalized is the text the registry compares schemas by. Rows stored
-- before this migration have none until the registry fills it in at its
-- next registration.
ALTER TABLE schemas DROP CONSTRAINT schemas_id_key;
ALTER TABLE schemas ADD CONSTRAINT schemas_subject_id_key UNIQUE (subject, id);
ALTER TABLE schemas ADD COLUMN normalized text;

-- Serves GET /schemas/ids/{id} and the search for an id to reuse. A hash
-- index, because a B-tree entry is limited to about 2.7 kB and a schema's
-- text can be longer.
CREATE INDEX schemas_id ON schemas (id);
CREATE INDEX schemas_normalized ON schemas USING hash (normalized);

-- Compatibility levels set through PUT /config and PUT /config/{subject}.
-- The empty subject is the global level: no subject name is empty.
CREATE TABLE schema_config (
    subject       text PRIMARY KEY,
    level         text NOT NULL CHECK (level IN ('BACKWARD',
                      'BACKWARD_TRANSITIVE', 'FORWARD', 'FORWARD_TRANSITIVE',
                      'FULL', 'FULL_TRANSITIVE', 'NONE')),
    updated_at_ms bigint NOT NULL
);
