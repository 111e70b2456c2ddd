-- When a removed key's material was destroyed in its store (policy
-- keys.purge-after after its removal); NULL while it is still there.
ALTER TABLE keys ADD COLUMN purged_at INTEGER;
