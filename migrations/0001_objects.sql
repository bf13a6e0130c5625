-- The current state: one row per live object.
CREATE TABLE objects (
    resource         TEXT    NOT NULL, -- "pods", "deployments.apps" (plural.group)
    namespace        TEXT    NOT NULL, -- "" for cluster-scoped objects
    name             TEXT    NOT NULL,
    revision         INTEGER NOT NULL, -- the object's resourceVersion
    created_revision INTEGER NOT NULL,
    value            TEXT    NOT NULL, -- the object as JSON, resourceVersion included
    PRIMARY KEY (resource, namespace, name)
) WITHOUT ROWID;

-- The history: one row per write, kept until compaction. Watches replay from here.
CREATE TABLE events (
    revision   INTEGER PRIMARY KEY, -- global, strictly increasing
    resource   TEXT    NOT NULL,
    namespace  TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    type       INTEGER NOT NULL, -- 0 added, 1 modified, 2 deleted
    value      TEXT    NOT NULL, -- the object after the write (for deletes: as deleted)
    prev_value TEXT              -- the object before the write, for filtered watches
);
CREATE INDEX events_by_resource ON events (resource, revision);

-- Small durable settings: the compacted revision, and the revision counter's floor.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO meta (key, value) VALUES ('compact_revision', 0), ('revision', 0);
