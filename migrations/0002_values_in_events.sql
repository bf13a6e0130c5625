-- Each write's object is stored once, in its `events` row. `objects` becomes the index of live
-- keys: it names the revision of each object's current version, whose `events` row holds the
-- value. Compaction keeps the row a live object points at (as etcd keeps each key's latest
-- revision), and a later write finds its predecessor through `prev_revision` instead of a
-- second copy of the old object.

-- The revision of the key's previous version (NULL for a creation).
ALTER TABLE events ADD COLUMN prev_revision INTEGER;

-- Link each existing row to the key's previous retained row. Where compaction already removed
-- it, the row's own `prev_value` (written by the old schema) still holds the old object.
UPDATE events SET prev_revision = linked.prev
FROM (
    SELECT revision,
           LAG(revision) OVER (PARTITION BY resource, namespace, name ORDER BY revision) AS prev
    FROM events
) AS linked
WHERE events.revision = linked.revision AND events.type <> 0;

-- Current versions whose history row was compacted away get one back (at a revision no watch
-- can ask for, since it is at or below the compacted one).
INSERT INTO events (revision, resource, namespace, name, type, value, prev_value)
SELECT o.revision, o.resource, o.namespace, o.name, 1, o.value, NULL
FROM objects o
WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.revision = o.revision);

CREATE TABLE objects_index (
    resource         TEXT    NOT NULL,
    namespace        TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    revision         INTEGER NOT NULL, -- the current version: its events row holds the object
    created_revision INTEGER NOT NULL,
    PRIMARY KEY (resource, namespace, name)
) WITHOUT ROWID;
INSERT INTO objects_index (resource, namespace, name, revision, created_revision)
SELECT resource, namespace, name, revision, created_revision FROM objects;
DROP TABLE objects;
ALTER TABLE objects_index RENAME TO objects;

-- Live objects with their values: what reads of current state use.
CREATE VIEW current_objects AS
SELECT o.resource, o.namespace, o.name, o.revision, o.created_revision, e.value
FROM objects o JOIN events e ON e.revision = o.revision;
