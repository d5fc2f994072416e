-- SPDX-License-Identifier: Apache-2.0
-- The store gives a schema registered under several subjects one id, as
-- Confluent's registry does. The schemas table made id UNIQUE, so it is
-- rebuilt with (subject, id) unique instead, and one subject still has an
-- id at most once. Existing rows keep their ids. normalized is the text
-- the registry compares schemas by. Rows stored before this migration
-- have none until the registry fills it in at its next registration.
CREATE TABLE schemas_new (
    subject       TEXT NOT NULL,
    version       INTEGER NOT NULL CHECK (version > 0),
    id            INTEGER NOT NULL CHECK (id > 0),
    schema        TEXT NOT NULL,
    normalized    TEXT,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (subject, version),
    UNIQUE (subject, id)
);
INSERT INTO schemas_new (subject, version, id, schema, created_at_ms)
    SELECT subject, version, id, schema, created_at_ms FROM schemas;
DROP TABLE schemas;
ALTER TABLE schemas_new RENAME TO schemas;

-- Serves GET /schemas/ids/{id} and the search for an id to reuse.
CREATE INDEX schemas_id ON schemas (id);
CREATE INDEX schemas_normalized ON schemas (normalized);

-- Compatibility levels set through PUT /config and PUT /config/{subject}.
-- The empty subject is the global level: no subject name is empty.
CREATE TABLE schema_config (
    subject       TEXT NOT NULL PRIMARY KEY,
    level         TEXT NOT NULL CHECK (level IN ('BACKWARD',
                      'BACKWARD_TRANSITIVE', 'FORWARD', 'FORWARD_TRANSITIVE',
                      'FULL', 'FULL_TRANSITIVE', 'NONE')),
    updated_at_ms INTEGER NOT NULL
);
